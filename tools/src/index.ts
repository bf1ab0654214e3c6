export { controlCall, type ControlCallArgs } from './control-client.ts'
export { serverCaller, withServer, toolCreds } from './server-client.ts'
