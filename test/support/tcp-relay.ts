/**
 * A TCP relay on a loopback port that forwards each connection to a target
 * port, and that a test can stall, break and re-point, to play a replication
 * link that lags and then dies, or a VIP / DNS name that moves to a promoted
 * replica (test/support/redis-replication.ts).
 *
 * Stalling is done by pausing both sockets of a connection: the bytes wait in
 * the kernel's buffers and the connection stays open, so neither side sees an
 * error (a replica keeps reporting `master_link_status:up`, the master keeps
 * listing it as connected, as when a network path stalls). A SIGSTOPped
 * replica would not do: on loopback the master's bytes land in its socket
 * buffer and are applied the moment it resumes.
 */
import { once } from "node:events";
import { createConnection, createServer, type Socket } from "node:net";

export interface TcpRelay {
  port: number;
  /**
   * Stops forwarding on every replication connection (one whose client sent
   * `REPLCONF`, `SYNC` or `PSYNC`), now and for those opened later; other
   * connections (clients, Sentinels) keep flowing. The sockets stay open.
   */
  freezeReplication(): void;
  /** Forwards again what the frozen connections hold. */
  thaw(): void;
  /** Destroys every open connection (both sides); new ones are still relayed. */
  cut(): void;
  /** New connections go to `port`; open ones are destroyed (as a moved VIP breaks them). */
  retarget(port: number): void;
  /** Replication connections open now (frozen or not). */
  replicationConnections(): number;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream: Socket;
  replication: boolean;
  frozen: boolean;
  /** Client bytes read before the connection was recognised and frozen. */
  held: Buffer[];
}

/** A RESP bulk string that is exactly one of the replication commands (never a key or a token). */
const REPLICATION_COMMAND = /\$\d+\r\n(?:REPLCONF|PSYNC|SYNC)\r\n/i;

export async function startTcpRelay(targetPort: number, host = "127.0.0.1"): Promise<TcpRelay> {
  let target = targetPort;
  let frozen = false;
  const pairs = new Set<Pair>();

  const destroy = (pair: Pair) => {
    pairs.delete(pair);
    pair.client.destroy();
    pair.upstream.destroy();
  };
  const freeze = (pair: Pair) => {
    pair.frozen = true;
    pair.client.pause();
    pair.upstream.pause();
  };

  const server = createServer({ pauseOnConnect: true }, (client) => {
    const upstream = createConnection({ host, port: target });
    const pair: Pair = { client, upstream, replication: false, frozen: false, held: [] };
    pairs.add(pair);
    client.on("error", () => destroy(pair));
    upstream.on("error", () => destroy(pair));
    client.on("close", () => destroy(pair));
    upstream.on("close", () => destroy(pair));
    upstream.on("connect", () => client.resume());
    client.on("data", (chunk: Buffer) => {
      if (!pair.replication && REPLICATION_COMMAND.test(chunk.toString("latin1"))) {
        pair.replication = true;
        if (frozen) freeze(pair);
      }
      if (pair.frozen) pair.held.push(chunk);
      else upstream.write(chunk);
    });
    upstream.on("data", (chunk: Buffer) => {
      // A chunk emitted before the pause took effect is held back too.
      if (pair.frozen) return void upstream.unshift(chunk);
      client.write(chunk);
    });
  });
  server.listen(0, host);
  await once(server, "listening");
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("relay has no port");

  return {
    port: address.port,
    freezeReplication() {
      frozen = true;
      for (const pair of pairs) if (pair.replication) freeze(pair);
    },
    thaw() {
      frozen = false;
      for (const pair of pairs) {
        if (!pair.frozen) continue;
        pair.frozen = false;
        for (const chunk of pair.held.splice(0)) pair.upstream.write(chunk);
        pair.client.resume();
        pair.upstream.resume();
      }
    },
    cut() {
      for (const pair of [...pairs]) destroy(pair);
    },
    retarget(port) {
      target = port;
      for (const pair of [...pairs]) destroy(pair);
    },
    replicationConnections: () => [...pairs].filter((pair) => pair.replication).length,
    async close() {
      for (const pair of [...pairs]) destroy(pair);
      server.close();
      await once(server, "close");
    },
  };
}
