/// <reference types="vite/client" />

/** The demo repository's trusted root (`metadata/1.root.json`), provided by demo-repo.ts. */
declare module 'virtual:outpost-demo/trusted-root' {
  const root: object;
  export default root;
}
