export * from './vldb.ts'
