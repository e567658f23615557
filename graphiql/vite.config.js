// Builds the GraphiQL playground into ../assets/graphiql/ with fixed file
// names, so the Rust server can embed them with include_bytes!.
import { defineConfig } from 'vite';

const fixedNames = {
  entryFileNames: '[name].js',
  chunkFileNames: '[name].js',
  assetFileNames: '[name][extname]',
};

export default defineConfig({
  // Where the server serves the assets; index.html itself is served at /graphql.
  base: './',
  logLevel: 'warn',
  build: {
    outDir: '../assets/graphiql',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    // Keep the fonts and icons as files of their own rather than data: URLs.
    assetsInlineLimit: 0,
    cssCodeSplit: false,
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 8000,
    rolldownOptions: {
      input: { graphiql: 'index.html' },
      // React libraries mark modules "use client"; meaningless in a bundle.
      onwarn(warning, warn) {
        if (warning.code !== 'MODULE_LEVEL_DIRECTIVE') warn(warning);
      },
      output: { ...fixedNames, codeSplitting: false },
    },
  },
  worker: {
    format: 'es',
    rolldownOptions: {
      output: { ...fixedNames, codeSplitting: false },
    },
  },
});
