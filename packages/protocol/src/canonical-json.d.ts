declare module '@tufjs/canonical-json' {
  const canonicalJson: { canonicalize(value: unknown): string };
  export default canonicalJson;
}
