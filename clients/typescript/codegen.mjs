// graphql-codegen: typed documents for the operations in src/, from the
// API's checked-in schema (the same file the server's tests keep current).
/** @type {import('@graphql-codegen/cli').CodegenConfig} */
export default {
  schema: '../../schema.graphql',
  documents: ['src/**/*.ts', '!src/gql/**'],
  ignoreNoDocuments: false,
  errorsOnly: true,
  generates: {
    'src/gql/': {
      preset: 'client',
      presetConfig: {
        // Plain result types rather than masked fragments: simplest to read.
        fragmentMasking: false,
      },
      config: {
        // Send the operation text as is; no GraphQL AST at run time.
        documentMode: 'string',
        useTypeImports: true,
        enumsAsTypes: true,
        // Every custom scalar must be mapped; a new one fails codegen.
        strictScalars: true,
        scalars: {
          UUID: 'string',
          DateTime: 'string',
          // An event's resource, in the REST shape: any JSON value.
          JSON: 'unknown',
        },
      },
    },
  },
};
