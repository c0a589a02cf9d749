import type { ClientMessage, ServerMessage } from "../src/generated/protocol.js";
import type { WebSocketConstructor, WebSocketLike } from "../src/core/environment.js";

/** FakeSocket is a WebSocketLike the test drives by hand: open, receive, drop. */
export class FakeSocket implements WebSocketLike {
  readyState = 0;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code?: number; reason?: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  readonly frames: string[] = [];
  closedWith?: { code?: number; reason?: string };

  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
  ) {}

  send(data: string): void {
    if (this.readyState !== 1) throw new Error("send on a socket that is not open");
    this.frames.push(data);
  }

  close(code?: number, reason?: string): void {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }

  /** open completes the handshake. */
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  /** receive delivers messages in one frame, newline-separated as the gateway batches them. */
  receive(...messages: ServerMessage[]): void {
    this.receiveRaw(messages.map((m) => JSON.stringify(m)).join("\n"));
  }

  receiveRaw(data: string): void {
    this.onmessage?.({ data });
  }

  /** drop closes the connection from the network side. */
  drop(code = 1006): void {
    this.readyState = 3;
    this.onclose?.({ code, reason: "" });
  }

  /** sent returns the client messages sent so far. */
  sent(): ClientMessage[] {
    return this.frames.map((f) => JSON.parse(f) as ClientMessage);
  }

  /** sentOfType returns the sent messages of one type. */
  sentOfType<T extends ClientMessage["type"]>(type: T): Extract<ClientMessage, { type: T }>[] {
    return this.sent().filter((m): m is Extract<ClientMessage, { type: T }> => m.type === type);
  }
}

/** fakeSockets returns a WebSocket class whose instances are recorded in `sockets`. */
export function fakeSockets(): { WebSocket: WebSocketConstructor; sockets: FakeSocket[]; last(): FakeSocket } {
  const sockets: FakeSocket[] = [];
  class RecordedSocket extends FakeSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      sockets.push(this);
    }
  }
  return {
    WebSocket: RecordedSocket,
    sockets,
    last() {
      const socket = sockets[sockets.length - 1];
      if (!socket) throw new Error("no socket was created");
      return socket;
    },
  };
}
