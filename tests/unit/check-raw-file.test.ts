// Protects the quarantine report of a file that is not UTF-8 CSV text: a compressed file, UTF-16/32
// text, binary data or another 8-bit encoding is named as such (a problem code and a message that
// says what to do), and none of its bytes are echoed back as a "header". Real bytes throughout:
// gzip from node:zlib, a ZIP archive from jszip, UTF-16 from Buffer's own encoder.
import { gzipSync } from "node:zlib";
import JSZip from "jszip";
import { describe, expect, it } from "vitest";
import { loadFeatureViews } from "#commons/feature-view-files.js";
import { checkFileHead, HEAD_BYTES } from "#functions/ingest/check-raw-file.js";

function energyView() {
  const view = loadFeatureViews("resources/feature-views").get("energy");
  if (!view) throw new Error("energy view missing");
  return view;
}
const energy = energyView();
const HEADER = energy.rawHeader.join(",");
const ROW = "MAC000002,2012-10-12,0.1385,0.154,0.886,46,0.196,7.098,0.0";
const GOOD_CSV = `${HEADER}\n${ROW}\n`;

/** The check as ingest runs it: the first HEAD_BYTES of the file, and the file's full size. */
function check(file: Uint8Array) {
  return checkFileHead(file.subarray(0, HEAD_BYTES), file.length, energy, 10_000_000);
}

function utf16be(text: string): Buffer {
  const bytes = Buffer.from(text, "utf16le");
  return bytes.swap16();
}

describe("a file that is not UTF-8 text is named, not echoed", () => {
  it("gzip: says so and asks for the uncompressed CSV", () => {
    const result = check(gzipSync(GOOD_CSV));
    expect(result.problems).toEqual([
      { code: "compressed", message: "The file is gzip-compressed; upload the uncompressed CSV" },
    ]);
    expect(result.header).toBeUndefined();
  });

  it("ZIP archive: says so and asks for the uncompressed CSV", async () => {
    const zip = new JSZip().file("energy.csv", GOOD_CSV);
    const result = check(await zip.generateAsync({ type: "uint8array", compression: "DEFLATE" }));
    expect(result.problems).toEqual([
      {
        code: "compressed",
        message: "The file is a ZIP archive; upload the uncompressed CSV, not an archive",
      },
    ]);
    expect(result.header).toBeUndefined();
  });

  it("UTF-16 and UTF-32 with a byte-order mark: names the encoding", () => {
    const utf32le = Buffer.alloc(GOOD_CSV.length * 4 + 4);
    utf32le.writeUInt32LE(0xfeff, 0);
    for (let i = 0; i < GOOD_CSV.length; i++) utf32le.writeUInt32LE(GOOD_CSV.charCodeAt(i), 4 + i * 4);
    const utf32be = Buffer.alloc(utf32le.length);
    for (let i = 0; i < utf32le.length; i += 4) utf32be.writeUInt32BE(utf32le.readUInt32LE(i), i);
    const cases: Array<[Uint8Array, string]> = [
      [Buffer.from(`\uFEFF${GOOD_CSV}`, "utf16le"), "UTF-16 (little-endian)"],
      [utf16be(`\uFEFF${GOOD_CSV}`), "UTF-16 (big-endian)"],
      [utf32le, "UTF-32 (little-endian)"],
      [utf32be, "UTF-32 (big-endian)"],
    ];
    for (const [bytes, encoding] of cases) {
      const result = check(bytes);
      expect(result.problems, encoding).toEqual([
        { code: "not_utf8", message: `The file is ${encoding} text; save it as UTF-8` },
      ]);
      expect(result.header, encoding).toBeUndefined();
    }
  });

  it("UTF-16 without a byte-order mark: recognised from its NUL bytes", () => {
    expect(check(Buffer.from(GOOD_CSV, "utf16le")).problems).toEqual([
      {
        code: "not_utf8",
        message: "The file is UTF-16 (little-endian) text without a byte-order mark; save it as UTF-8",
      },
    ]);
    expect(check(utf16be(GOOD_CSV)).problems).toEqual([
      {
        code: "not_utf8",
        message: "The file is UTF-16 (big-endian) text without a byte-order mark; save it as UTF-8",
      },
    ]);
  });

  it("other NUL bytes: binary data, with the place of the first one", () => {
    const bytes = Buffer.from(`${HEADER}\nMAC000002,2012-10-12,\0\0\u0001\u0002binary\n`);
    const result = check(bytes);
    expect(result.problems).toEqual([
      {
        code: "not_utf8",
        message: "The file holds binary data (a NUL byte on line 2, column 22), not CSV text",
      },
    ]);
    expect(result.header).toBeUndefined();
  });

  it("invalid UTF-8 (a Latin-1 file): names the first bad byte and where it is", () => {
    const latin1 = Buffer.from(`${HEADER}\nMAC000002,2012-10-12,café\n`, "latin1");
    const result = check(latin1);
    expect(result.problems).toEqual([
      {
        code: "not_utf8",
        message:
          "The file is not valid UTF-8 (byte 0xe9 on line 2, column 25: Latin-1 or Windows-1252?); " +
          "save it as UTF-8",
      },
    ]);
    expect(result.header).toBeUndefined();
    // A U+FFFD written in the file is valid UTF-8 (3 bytes): the bad byte after it is still found.
    const afterReplacementChar = Buffer.concat([
      Buffer.from(`${HEADER}\nMAC000002,2012-10-12,\uFFFD,`),
      Buffer.from([0xff]),
      Buffer.from("\n"),
    ]);
    expect(check(afterReplacementChar).problems[0]?.message).toContain("byte 0xff on line 2, column 26");
  });

  it("still accepts UTF-8, with or without a BOM, and a head cut inside a multi-byte character", () => {
    expect(check(Buffer.from(GOOD_CSV)).problems).toEqual([]);
    expect(check(Buffer.from(`\uFEFF${GOOD_CSV}`)).problems).toEqual([]);
    // A file larger than the head whose HEAD_BYTES-th byte falls inside "é" (2 bytes in UTF-8).
    const filler = `${HEADER}\n${ROW}\n`;
    const padding = "x".repeat(HEAD_BYTES - Buffer.byteLength(filler) - 1);
    const big = Buffer.from(`${filler}${padding}é and more\n`);
    expect(big[HEAD_BYTES - 1]).toBe(0xc3);
    expect(check(big).problems).toEqual([]);
  });
});
