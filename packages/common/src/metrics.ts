// Prometheus metrics (prom-client), for `--metrics HOST:PORT` on servers and cache
// managers: a registry per process, served at /metrics. Values a component already keeps
// (counters, table sizes) are read when scraped, not copied on every change.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { parseHostPort } from './units.ts'

export class Metrics {
  readonly registry = new Registry()

  constructor (readonly prefix: string) {}

  counter (name: string, help: string, labelNames: string[] = []): Counter {
    return new Counter({ name: this.prefix + name, help, labelNames, registers: [this.registry] })
  }

  histogram (name: string, help: string, labelNames: string[], buckets: number[]): Histogram {
    return new Histogram({ name: this.prefix + name, help, labelNames, buckets, registers: [this.registry] })
  }

  /** A gauge read when scraped. */
  gauge (name: string, help: string, read: () => number): void {
    new Gauge({ name: this.prefix + name, help, registers: [this.registry], collect () { this.set(read()) } })
  }

  /** A gauge with labels, read when scraped: each call of `read` gives the values by label set. */
  gauges (name: string, help: string, labelNames: string[], read: () => Array<[Record<string, string>, number]>): void {
    new Gauge({ name: this.prefix + name, help, labelNames, registers: [this.registry], collect () { this.reset(); for (const [labels, v] of read()) this.set(labels, v) } })
  }

  /** A counter whose total another part of the program keeps: it grows by what that total grew since the last scrape. */
  counted (name: string, help: string, read: () => number): void {
    let last = 0
    new Counter({ name: this.prefix + name, help, registers: [this.registry], collect () { const now = read(); if (now > last) this.inc(now - last); last = now } })
  }

  /** Serves /metrics at `address` (HOST:PORT; port 0: any). Resolves with the address it listens on. */
  async serve (address: string): Promise<{ address: string, close: () => Promise<void> }> {
    const { host, port } = parseHostPort(address)
    // The process's own figures (event loop, memory, GC) are watched only once they are served.
    collectDefaultMetrics({ register: this.registry, prefix: `${this.prefix}process_` })
    const server: Server = createServer((req, res) => {
      if (req.url !== '/metrics') { res.writeHead(404).end('metrics are at /metrics\n'); return }
      this.registry.metrics().then(text => {
        res.writeHead(200, { 'content-type': this.registry.contentType }).end(text)
      }, (err: Error) => { res.writeHead(500).end(`${err.message}\n`) })
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => { server.off('error', reject); resolve() })
    })
    server.unref()
    const a = server.address() as AddressInfo
    return { address: `${host}:${a.port}`, close: async () => { await new Promise(resolve => server.close(resolve)) } }
  }
}

/** Latency buckets for RPCs, in seconds: from 0.1 ms to 30 s. */
export const RPC_SECONDS = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
