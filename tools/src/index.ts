export { controlCall, type ControlCallArgs } from './control-client.ts'
export { serverCall } from './server-client.ts'
