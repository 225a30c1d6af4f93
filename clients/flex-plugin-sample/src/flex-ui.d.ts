// The part of Flex UI 1.x (@twilio/flex-ui, flex-plugin) this sample uses, as
// Flex's docs describe it. A real plugin gets these types from those packages
// (create-flex-plugin); they are declared here so the sample type-checks in this
// repo without installing Flex.
declare module "@twilio/flex-ui" {
  import * as React from "react";

  export interface ChatMessageSource {
    sid: string;
    type: "text" | "media";
    body: string | null;
    author: string;
    media?: { sid: string; contentType: string; filename: string | null; size: number };
    remove(): Promise<unknown>;
  }
  export interface MessageState {
    source: ChatMessageSource;
    isFromMe: boolean;
  }
  export interface MessageBubbleProps {
    message: MessageState;
    channelSid: string;
    member?: { source: { sid: string; identity: string } };
  }
  export interface ContentFragmentOptions<P> {
    sortOrder?: number;
    if?: (props: P) => boolean;
    align?: "start" | "end";
  }
  export interface DynamicContentStore<P> {
    add(element: React.ReactElement, options?: ContentFragmentOptions<P>): void;
    replace(element: React.ReactElement, options?: ContentFragmentOptions<P>): void;
    remove(key: string, options?: ContentFragmentOptions<P>): void;
  }
  export const MessageBubble: { Content: DynamicContentStore<MessageBubbleProps> };

  export interface SendMediaMessagePayload {
    file: File;
    messageAttributes?: Record<string, unknown>;
    channelSid: string;
  }
  export type ActionFunction<P> = (payload: P, original: (payload: P) => Promise<unknown>) => Promise<unknown>;
  export const Actions: {
    replaceAction(name: "SendMediaMessage", fn: ActionFunction<SendMediaMessagePayload>): void;
    replaceAction(name: string, fn: ActionFunction<any>): void;
    invokeAction(name: string, payload?: unknown): Promise<unknown>;
  };
  export class Manager {
    static getInstance(): Manager;
    user: { token: string; identity: string };
    serviceConfiguration: { chat_service_instance_sid: string };
  }
}

declare module "flex-plugin" {
  import type * as Flex from "@twilio/flex-ui";
  export class FlexPlugin {
    constructor(name: string);
    readonly name: string;
    init(flex: typeof Flex, manager: Flex.Manager): void | Promise<void>;
  }
}
