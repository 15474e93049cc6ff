// A loopback TCP proxy in front of Cassandra that times each connection's login: from the client's
// AUTH_RESPONSE frame to the node's AUTH_SUCCESS (or AUTH_CHALLENGE / ERROR), i.e. the node checking
// the password (bcrypt in PasswordAuthenticator) plus one loopback round trip. bench:cold runs one
// variant through it to report init with and without the login's wait (Keyspaces checks a SigV4
// signature instead of a bcrypt hash: that wait does not transfer to AWS).
// Native protocol v3+ frame header: version (0x80 bit set on responses), flags, stream (2 bytes),
// opcode, body length (4 bytes); no compression, no TLS on this path.
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";

const AUTH_RESPONSE = 0x0f;
const LOGIN_ANSWERS = new Set([0x10 /* AUTH_SUCCESS */, 0x0e /* AUTH_CHALLENGE */, 0x00 /* ERROR */]);

export class CqlLoginTimer {
  #loginMs: number[] = [];
  readonly #sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number): Promise<CqlLoginTimer> {
    let timer: CqlLoginTimer | undefined;
    const server = createServer((client) => timer?.forward(client, targetPort));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    timer = new CqlLoginTimer(server, (server.address() as { port: number }).port);
    return timer;
  }

  /** The login waits (ms) seen since the last call, one per connection that logged in. */
  take(): number[] {
    const taken = this.#loginMs;
    this.#loginMs = [];
    return taken;
  }

  async stop(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private forward(client: Socket, targetPort: number): void {
    const upstream = tcpConnect({ host: "127.0.0.1", port: targetPort, noDelay: true });
    client.setNoDelay(true);
    let sentAt: number | undefined;
    watchFrames(client, (opcode) => {
      if (opcode === AUTH_RESPONSE) sentAt = performance.now();
    });
    watchFrames(upstream, (opcode) => {
      if (sentAt !== undefined && LOGIN_ANSWERS.has(opcode)) {
        this.#loginMs.push(performance.now() - sentAt);
        sentAt = undefined;
      }
    });
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      this.#sockets.add(from);
      from.on("data", (chunk) => to.write(chunk));
      from.on("error", () => to.destroy());
      from.on("close", () => {
        this.#sockets.delete(from);
        to.destroy();
      });
    }
  }
}

function watchFrames(socket: Socket, onFrame: (opcode: number) => void): void {
  let pending: Buffer = Buffer.alloc(0);
  socket.on("data", (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 9) {
      const length = pending.readUInt32BE(5);
      if (pending.length < 9 + length) break;
      onFrame(pending.readUInt8(4));
      pending = pending.subarray(9 + length);
    }
  });
}
