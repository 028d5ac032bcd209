// Types of the wsbox handler SDK (wsbox.js), from the `app` world of wit/ (package
// wsbox:websocket@0.2.0). Text messages are strings, binary ones Uint8Array.

/** A message from or to a client: text (a string) or binary. */
export type Data = string | Uint8Array;

/** An HTTP request (`types.request`). */
export interface Request {
  method: string;
  /** The path and query, e.g. `/chat?room=a`. */
  uri: string;
  /** 10 for HTTP/1.0, 11 for HTTP/1.1. */
  version: number;
  headers: Array<[string, Uint8Array]>;
  body: Uint8Array;
}

/** An HTTP response (`types.response`); status 101 opens the WebSocket. */
export interface Response {
  status: number;
  headers: Array<[string, Uint8Array]>;
  body: Uint8Array;
}

/** The upgrade request as kept for the connection (`connection.request-info`). */
export interface RequestInfo {
  path: string;
  query: string;
  headers: Array<[string, Uint8Array]>;
  protocol?: string;
}

/** Why a send failed (`connection.send-error`). */
export type SendError = 'closed' | 'gone' | 'backpressure' | 'unreachable';
/** Why a subscribe failed (`connection.topic-error`). */
export type TopicError = 'bad-name' | 'too-many';
/** Why an auto-response was refused (`connection.auto-response-error`). */
export type AutoResponseError = 'too-large' | 'too-many';

export interface Handler {
  /** Every HTTP request on the connection; return `accept(request)` to open the WebSocket. */
  handle?(request: Request): Response | Promise<Response>;
  /** The 101 is out: the handler may speak first. */
  onOpen?(): void;
  /** A complete message from the client. */
  onMessage?(data: Data): void;
  /** The alarm set with `setAlarm` is due. */
  onAlarm?(): void;
  /** The connection ended; no call follows. */
  onClose?(code: number, reason: string, clean: boolean): void;
}

/** The app world's `handler` export. */
export interface HandlerExport {
  handle(request: Request): Response | Promise<Response>;
  onOpen(): void;
  onMessage(message: { tag: 'text'; val: string } | { tag: 'binary'; val: Uint8Array }): void;
  onAlarm(): void;
  onClose(code: number, reason: string, clean: boolean): void;
}

export function defineHandler(handler: Handler): HandlerExport;
export function header(request: Request | RequestInfo, name: string): string | undefined;
export function isUpgrade(request: Request): boolean;
export function offeredProtocols(request: Request | RequestInfo): string[];
export function accept(request: Request, protocol?: string): Response;
export function respond(status: number, body?: string | Uint8Array, headers?: Record<string, string>): Response;

export function selfId(): string;
export function request(): RequestInfo;
export function send(data: Data): SendError | undefined;
export function sendTo(id: string, data: Data): SendError | undefined;
export function close(code?: number, reason?: string): void;
export function closeOther(id: string, code?: number, reason?: string): SendError | undefined;
export function subscribe(topic: string): TopicError | undefined;
export function unsubscribe(topic: string): boolean;
export function topics(): string[];
export function publish(topic: string, data: Data, includeSelf?: boolean): number;
export function subscribers(topic: string): number;
export function attachment(): Uint8Array;
export function setAttachment(data: string | Uint8Array): { max: number } | undefined;
export function setAlarm(ms: number): void;
export function cancelAlarm(): void;
export function setAutoResponse(request: Data, response: Data): AutoResponseError | undefined;
export function clearAutoResponse(request: Data): boolean;
export function limits(): {
  topics: number;
  topicLength: number;
  attachment: number;
  autoResponses: number;
  autoResponseSize: number;
};
