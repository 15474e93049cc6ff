// PLACEHOLDER so `sls package` can bundle the function declared in serverless.yml. The real
// handler comes from the orchestration branch; drop this file when merging it.
export const handler = async (): Promise<never> => {
  throw new Error("functions/status/handler.ts is a packaging placeholder, not the real handler");
};
