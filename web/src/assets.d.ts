// esbuild bundles the stylesheet main.ts imports into its own hashed .css file.
declare module '*.css';
