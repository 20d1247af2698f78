using System.Text.Json;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;

namespace TokenGateway.Core.Optimization;

/// <summary>What a piece of request text is, which decides what a stage may do with it.</summary>
internal enum SlotKind
{
    System,
    User,
    Assistant,
    ToolResult,
    Document,
}

/// <summary>A string inside the request body that stages may rewrite (message text, tool result, document).</summary>
internal sealed class TextSlot(JsonNode container, string? property, int index, SlotKind kind, int message)
{
    public SlotKind Kind { get; } = kind;

    /// <summary>Index of the message/input item holding the text; -1 for system/instructions outside the list.</summary>
    public int Message { get; } = message;

    /// <summary>The content block holding the text (Anthropic document/search_result blocks), if any.</summary>
    public JsonObject? Block { get; init; }

    public string Text
    {
        get => (property is null ? container.AsArray()[index] : container.AsObject()[property])!.GetValue<string>();
        set
        {
            if (property is null)
            {
                container.AsArray()[index] = JsonValue.Create(value);
            }
            else
            {
                container.AsObject()[property] = JsonValue.Create(value);
            }
        }
    }
}

/// <summary>Enumerates the rewritable text of a request in prompt order for each dialect.</summary>
internal static class RequestText
{
    public static List<TextSlot> Slots(LlmRequest request)
    {
        var slots = new List<TextSlot>();
        var body = request.Body;
        switch (request.Dialect)
        {
            case LlmDialect.AnthropicMessages:
            case LlmDialect.AnthropicCountTokens:
                AddContent(slots, body, "system", SlotKind.System, -1);
                if (body["messages"] is JsonArray messages)
                {
                    for (var i = 0; i < messages.Count; i++)
                    {
                        if (messages[i] is JsonObject m)
                        {
                            AddContent(slots, m, "content", Role(m) == "assistant" ? SlotKind.Assistant : SlotKind.User, i);
                        }
                    }
                }

                break;
            case LlmDialect.OpenAIResponses:
                AddString(slots, body, "instructions", SlotKind.System, -1);
                if (body["input"] is JsonArray items)
                {
                    for (var i = 0; i < items.Count; i++)
                    {
                        if (items[i] is not JsonObject item)
                        {
                            continue;
                        }

                        if ((string?)item["type"] is "function_call_output" or "custom_tool_call_output")
                        {
                            AddString(slots, item, "output", SlotKind.ToolResult, i);
                        }
                        else if (item["role"] is not null)
                        {
                            AddContent(slots, item, "content", KindOf(Role(item)), i);
                        }
                    }
                }
                else
                {
                    AddString(slots, body, "input", SlotKind.User, 0);
                }

                break;
            case LlmDialect.OpenAIChat:
                if (body["messages"] is JsonArray chat)
                {
                    for (var i = 0; i < chat.Count; i++)
                    {
                        if (chat[i] is JsonObject m)
                        {
                            AddContent(slots, m, "content", KindOf(Role(m)), i);
                        }
                    }
                }

                break;
        }

        return slots;
    }

    public static string? Role(JsonNode? message) =>
        message is JsonObject o && o["role"] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    public static SlotKind KindOf(string? role) => role switch
    {
        "system" or "developer" => SlotKind.System,
        "assistant" => SlotKind.Assistant,
        "tool" or "function" => SlotKind.ToolResult,
        _ => SlotKind.User,
    };

    private static void AddString(List<TextSlot> slots, JsonObject owner, string property, SlotKind kind, int message)
    {
        if (owner[property] is JsonValue v && v.GetValueKind() == JsonValueKind.String)
        {
            slots.Add(new TextSlot(owner, property, 0, kind, message));
        }
    }

    /// <summary>A content field: a string, or an array of parts/blocks (text, tool_result, document, search_result).</summary>
    private static void AddContent(List<TextSlot> slots, JsonObject owner, string property, SlotKind kind, int message)
    {
        switch (owner[property])
        {
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                slots.Add(new TextSlot(owner, property, 0, kind, message));
                break;
            case JsonArray parts:
                AddParts(slots, parts, kind, message);
                break;
        }
    }

    private static void AddParts(List<TextSlot> slots, JsonArray parts, SlotKind kind, int message)
    {
        for (var j = 0; j < parts.Count; j++)
        {
            if (parts[j] is not JsonObject part)
            {
                continue;
            }

            switch ((string?)part["type"])
            {
                case "text" or "input_text" or "output_text":
                    AddString(slots, part, "text", kind, message);
                    break;
                case "tool_result":
                    AddContent(slots, part, "content", SlotKind.ToolResult, message);
                    break;
                case "document" when part["source"] is JsonObject source:
                    if ((string?)source["type"] == "text")
                    {
                        slots.Add(new TextSlot(source, "data", 0, SlotKind.Document, message) { Block = part });
                    }
                    else if (source["content"] is JsonArray documentParts)
                    {
                        AddBlockParts(slots, documentParts, part, message);
                    }

                    break;
                case "search_result" when part["content"] is JsonArray resultParts:
                    AddBlockParts(slots, resultParts, part, message);
                    break;
            }
        }
    }

    private static void AddBlockParts(List<TextSlot> slots, JsonArray parts, JsonObject block, int message)
    {
        for (var k = 0; k < parts.Count; k++)
        {
            if (parts[k] is JsonObject p && p["text"] is JsonValue t && t.GetValueKind() == JsonValueKind.String)
            {
                slots.Add(new TextSlot(p, "text", 0, SlotKind.Document, message) { Block = block });
            }
        }
    }
}
