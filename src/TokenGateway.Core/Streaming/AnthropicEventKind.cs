using System.Text.Json;

namespace TokenGateway.Core.Streaming;

/// <summary>The Anthropic Messages stream event types the meter and the stream translators act on.</summary>
internal enum AnthropicEventKind
{
    Other,
    MessageStart,
    BlockStart,
    BlockDelta,
    BlockStop,
    MessageDelta,
    MessageStop,
    Error,
}

/// <summary>Classifies an Anthropic event's <c>type</c> value: the one classifier of the meter and the translators.</summary>
internal static class AnthropicEventKinds
{
    /// <summary>The kind of the string the reader is on; any other token is skipped and is <see cref="AnthropicEventKind.Other"/>.</summary>
    public static AnthropicEventKind Classify(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.String)
        {
            reader.Skip();
            return AnthropicEventKind.Other;
        }

        return reader.ValueTextEquals("content_block_delta"u8) ? AnthropicEventKind.BlockDelta
            : reader.ValueTextEquals("content_block_start"u8) ? AnthropicEventKind.BlockStart
            : reader.ValueTextEquals("content_block_stop"u8) ? AnthropicEventKind.BlockStop
            : reader.ValueTextEquals("message_start"u8) ? AnthropicEventKind.MessageStart
            : reader.ValueTextEquals("message_delta"u8) ? AnthropicEventKind.MessageDelta
            : reader.ValueTextEquals("message_stop"u8) ? AnthropicEventKind.MessageStop
            : reader.ValueTextEquals("error"u8) ? AnthropicEventKind.Error
            : AnthropicEventKind.Other;
    }

    /// <summary>True for the events that carry a content block or its delta (the text the meter counts).</summary>
    public static bool CarriesContent(this AnthropicEventKind kind) =>
        kind is AnthropicEventKind.BlockStart or AnthropicEventKind.BlockDelta;
}
