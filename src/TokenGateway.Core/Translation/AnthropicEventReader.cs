using System.Text.Json;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Streaming;

namespace TokenGateway.Core.Translation;

/// <summary>
/// Reads the fields of one Anthropic Messages stream event that the stream translators need, in one forward pass
/// without materializing the event (spans point into the event's data).
/// </summary>
internal static class AnthropicEventReader
{

    internal static void Parse(ReadOnlySpan<byte> data, ref AnthropicEvent ev)
    {
        var reader = new Utf8JsonReader(data);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            return;
        }

        while (reader.Read() && reader.CurrentDepth > 0)
        {
            if (reader.TokenType != JsonTokenType.PropertyName)
            {
                continue;
            }

            if (reader.ValueTextEquals("type"u8))
            {
                reader.Read();
                ev.Type = AnthropicEventKinds.Classify(ref reader);
            }
            else if (reader.ValueTextEquals("index"u8))
            {
                reader.Read();
                ev.Index = reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out var index) ? index : -1;
            }
            else if (reader.ValueTextEquals("message"u8))
            {
                reader.Read();
                ReadMessage(ref reader, ref ev);
            }
            else if (reader.ValueTextEquals("content_block"u8))
            {
                reader.Read();
                ReadContentBlock(ref reader, ref ev);
            }
            else if (reader.ValueTextEquals("delta"u8))
            {
                reader.Read();
                ReadDelta(ref reader, ref ev);
            }
            else if (reader.ValueTextEquals("usage"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.StartObject)
                {
                    ev.Usage = ProviderUsageFields.Read(ref reader);
                    ev.HasUsage = ev.Usage.Any;
                }
            }
            else if (reader.ValueTextEquals("error"u8))
            {
                reader.Read();
                ReadError(ref reader, ref ev);
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }
    }


    private static void ReadMessage(ref Utf8JsonReader reader, ref AnthropicEvent ev)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            return;
        }

        var depth = reader.CurrentDepth;
        while (reader.Read() && reader.CurrentDepth > depth)
        {
            if (reader.TokenType != JsonTokenType.PropertyName)
            {
                continue;
            }

            var isId = reader.ValueTextEquals("id"u8);
            var isModel = reader.ValueTextEquals("model"u8);
            var isUsage = reader.ValueTextEquals("usage"u8);
            reader.Read();
            if (isId && reader.TokenType == JsonTokenType.String)
            {
                ev.Id = reader.GetString();
            }
            else if (isModel && reader.TokenType == JsonTokenType.String)
            {
                ev.Model = reader.GetString();
            }
            else if (isUsage && reader.TokenType == JsonTokenType.StartObject)
            {
                ev.Usage = ProviderUsageFields.Read(ref reader);
                ev.HasUsage = ev.Usage.Any;
            }
            else
            {
                reader.Skip();
            }
        }
    }

    private static void ReadContentBlock(ref Utf8JsonReader reader, ref AnthropicEvent ev)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            return;
        }

        var depth = reader.CurrentDepth;
        while (reader.Read() && reader.CurrentDepth > depth)
        {
            if (reader.TokenType != JsonTokenType.PropertyName)
            {
                continue;
            }

            var isType = reader.ValueTextEquals("type"u8);
            var isId = reader.ValueTextEquals("id"u8);
            var isName = reader.ValueTextEquals("name"u8);
            var isText = reader.ValueTextEquals("text"u8);
            reader.Read();
            if (reader.TokenType != JsonTokenType.String)
            {
                reader.Skip();
            }
            else if (isType)
            {
                ev.BlockType = reader.ValueTextEquals("tool_use"u8) ? AnthropicBlock.ToolUse
                    : reader.ValueTextEquals("text"u8) ? AnthropicBlock.Text
                    : reader.ValueTextEquals("thinking"u8) ? AnthropicBlock.Thinking
                    : AnthropicBlock.Other;
            }
            else if (isText)
            {
                ev.Text = reader.ValueSpan; // a text block may start with text already in it
            }
            else if (isId)
            {
                ev.ToolId = reader.ValueSpan;
            }
            else if (isName)
            {
                ev.ToolName = reader.ValueSpan;
            }
        }
    }

    private static void ReadDelta(ref Utf8JsonReader reader, ref AnthropicEvent ev)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            return;
        }

        var depth = reader.CurrentDepth;
        while (reader.Read() && reader.CurrentDepth > depth)
        {
            if (reader.TokenType != JsonTokenType.PropertyName)
            {
                continue;
            }

            var isType = reader.ValueTextEquals("type"u8);
            var isText = reader.ValueTextEquals("text"u8) || reader.ValueTextEquals("thinking"u8) || reader.ValueTextEquals("partial_json"u8);
            var isStop = reader.ValueTextEquals("stop_reason"u8);
            reader.Read();
            if (reader.TokenType != JsonTokenType.String)
            {
                reader.Skip();
            }
            else if (isType)
            {
                ev.DeltaType = reader.ValueTextEquals("text_delta"u8) ? AnthropicDelta.Text
                    : reader.ValueTextEquals("thinking_delta"u8) ? AnthropicDelta.Thinking
                    : reader.ValueTextEquals("input_json_delta"u8) ? AnthropicDelta.InputJson
                    : AnthropicDelta.Other;
            }
            else if (isText)
            {
                ev.Text = reader.ValueSpan;
            }
            else if (isStop)
            {
                ev.StopReason = reader.GetString();
            }
        }
    }

    private static void ReadError(ref Utf8JsonReader reader, ref AnthropicEvent ev)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            return;
        }

        var depth = reader.CurrentDepth;
        while (reader.Read() && reader.CurrentDepth > depth)
        {
            if (reader.TokenType != JsonTokenType.PropertyName)
            {
                continue;
            }

            var isType = reader.ValueTextEquals("type"u8);
            var isMessage = reader.ValueTextEquals("message"u8);
            reader.Read();
            if (reader.TokenType != JsonTokenType.String)
            {
                reader.Skip();
            }
            else if (isType)
            {
                ev.ErrorType = reader.GetString();
            }
            else if (isMessage)
            {
                ev.ErrorMessage = reader.ValueSpan;
            }
        }
    }
}

/// <summary>The content block types the translators act on.</summary>
internal enum AnthropicBlock
{
    Other,
    Text,
    Thinking,
    ToolUse,
}

/// <summary>The content block delta types the translators act on.</summary>
internal enum AnthropicDelta
{
    Other,
    Text,
    Thinking,
    InputJson,
}

/// <summary>The fields of one Anthropic event the translation needs; spans point into the event's data.</summary>
internal ref struct AnthropicEvent
{
    public AnthropicEventKind Type;
    public int Index;
    public string? Id;
    public string? Model;
    public AnthropicBlock BlockType;
    public ReadOnlySpan<byte> ToolId;
    public ReadOnlySpan<byte> ToolName;
    public AnthropicDelta DeltaType;
    public ReadOnlySpan<byte> Text;
    public string? StopReason;
    public ProviderUsageFields Usage;
    public bool HasUsage;
    public string? ErrorType;
    public ReadOnlySpan<byte> ErrorMessage;
}
