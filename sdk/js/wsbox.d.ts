/// <reference path="./wit/interfaces/wsbox-websocket-types.d.ts" />
/// <reference path="./wit/interfaces/wsbox-websocket-connection.d.ts" />
// Types of the wsbox handler SDK (wsbox.js), over the `app` world of wit/ (package
// wsbox:websocket@0.2.0). Text messages are strings, binary ones Uint8Array.

/** A message from or to a client: text (a string) or binary. */
export type Data = string | Uint8Array;

// The WIT types themselves, generated from wit/ (types.mjs; tests/node checks they match),
// declared by the references at the top.
import type { Message, Request, Response } from 'wsbox:websocket/types@0.2.0';
import type {
  AutoResponseError,
  RequestInfo,
  SendError,
  TopicError,
} from 'wsbox:websocket/connection@0.2.0';

export type { AutoResponseError, Message, Request, RequestInfo, Response, SendError, TopicError };

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
  onMessage(message: Message): void;
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
