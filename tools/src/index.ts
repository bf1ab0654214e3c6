export { controlCall, type ControlCallArgs } from './control-client.ts'
export { serverCaller, withServer, toolTrust } from './server-client.ts'
