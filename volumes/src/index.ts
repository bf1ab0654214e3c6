export * from './vldb.ts'
export * from './location-db.ts'
export * from './remote-vldb.ts'
export * from './etcd-vldb.ts'
