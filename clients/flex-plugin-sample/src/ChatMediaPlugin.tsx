// A Flex UI 1.x plugin that does what Flex's chat attachments guide shows, against
// chat-media: SendMediaMessage through @chat-media/client (uploads above Twilio's
// direct limit go by session), media rendered from temporary URLs, a delete button
// and the BlockUser button.
import * as React from "react";
import * as Flex from "@twilio/flex-ui";
import { FlexPlugin } from "flex-plugin";
import { ChatMediaClient, ChatMediaError, type UploadProgress } from "@chat-media/client";

/** Where chat-media is deployed (the HTTP API's URL). */
const CHAT_MEDIA_URL = "https://chat-media.example.com";

let client: ChatMediaClient;

export default class ChatMediaPlugin extends FlexPlugin {
  constructor() {
    super("ChatMediaPlugin");
  }

  init(flex: typeof Flex, manager: Flex.Manager): void {
    client = new ChatMediaClient({
      baseUrl: CHAT_MEDIA_URL,
      serviceSid: manager.serviceConfiguration.chat_service_instance_sid,
      // Flex refreshes the token; read it at each call.
      token: () => manager.user.token,
    });

    flex.Actions.replaceAction("SendMediaMessage", async (payload) => {
      const { file, messageAttributes, channelSid } = payload;
      return client.sendMediaMessage(channelSid, file, {
        filename: file.name,
        contentType: file.type,
        attributes: messageAttributes,
        onProgress: (p: UploadProgress) =>
          console.debug(`chat-media: ${file.name} ${Math.round((100 * p.loaded) / p.total)}%`),
      });
    });

    flex.MessageBubble.Content.add(<MediaBody key="chat-media-body" />, {
      if: (props) => props.message.source.type === "media",
    });
    flex.MessageBubble.Content.add(<DeleteButton key="chat-media-delete" />, {
      if: (props) => props.message.isFromMe,
    });
    flex.MessageBubble.Content.add(<BlockUserButton key="chat-media-block" />, {
      if: (props) => !props.message.isFromMe,
    });
  }
}

type BubbleProps = Partial<Flex.MessageBubbleProps>;

/** The media of a message, from its temporary URL (cached until it expires). */
function MediaBody(props: BubbleProps) {
  const media = props.message?.source.media;
  const [url, setUrl] = React.useState<string | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  React.useEffect(() => {
    if (!media) return;
    let live = true;
    client
      .getContentTemporaryUrl(media.sid)
      .then((u) => live && setUrl(u))
      .catch((e: ChatMediaError) => live && setError(e.message));
    return () => {
      live = false;
    };
  }, [media?.sid]);
  if (!media) return null;
  if (error) return <div role="alert">{error}</div>;
  if (!url) return <div aria-busy="true">Loading {media.filename}…</div>;
  const alt = media.filename ?? "attachment";
  if (media.contentType.startsWith("image/")) {
    return <img src={url} alt={alt} style={{ maxWidth: "100%" }} />;
  }
  if (media.contentType.startsWith("video/")) {
    return <video src={url} controls aria-label={alt} style={{ maxWidth: "100%" }} />;
  }
  return (
    <a href={url} target="_blank" rel="noopener noreferrer">
      {alt}
    </a>
  );
}

/** `message.source.remove()`, through chat-media's API. */
function DeleteButton(props: BubbleProps) {
  const message = props.message?.source;
  const channelSid = props.channelSid;
  if (!message || !channelSid) return null;
  return (
    <button
      type="button"
      onClick={() =>
        client.deleteMessage(channelSid, message.sid).then(() => message.media && client.clearUrlCache(message.media.sid))
      }
    >
      Delete
    </button>
  );
}

/** The BlockUser button: blocks the message's author in this channel. */
function BlockUserButton(props: BubbleProps) {
  const channelSid = props.channelSid;
  const author = props.message?.source.author;
  const [blocked, setBlocked] = React.useState(false);
  if (!channelSid || !author) return null;
  const toggle = async () => {
    const result = blocked
      ? await client.unblockMember(channelSid, author)
      : await client.blockMember(channelSid, author);
    setBlocked(result.blocked);
  };
  return (
    <button type="button" onClick={toggle}>
      {blocked ? "Unblock user" : "Block user"}
    </button>
  );
}
