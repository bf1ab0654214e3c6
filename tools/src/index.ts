export { controlCall } from './control-client.ts'
export { serverCall } from './server-client.ts'
