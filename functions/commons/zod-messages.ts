// zod/mini, which the schemas on getFeatures' path use so its bundle carries ~30 kB of zod instead of
// 443 kB (docs/PERFORMANCE.md, "Serving at the floor: cold init under 200 ms"), ships no messages:
// without a locale every issue reads "Invalid input". Importing this module installs zod's English
// messages, the ones classic zod installs itself, so a bad setting or view fails with the same text
// either way.
import { en } from "zod/locales";
import { config } from "zod/mini";

config(en());
