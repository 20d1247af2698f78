using System.Buffers;
using System.Text;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;

namespace TokenGateway.Core.StructuredOutput;

/// <summary>
/// Replays a complete non-streaming response as a well-formed SSE stream in the same dialect (buffered streaming
/// mode: the upstream call was made without streaming so the answer could be validated and repaired first).
/// </summary>
public static class SseReplay
{
    /// <summary>Writes the events for <paramref name="response"/>; <paramref name="includeUsage"/> adds OpenAI's usage chunk.</summary>
    public static void Write(LlmDialect dialect, JsonObject response, bool includeUsage, IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(response);
        ArgumentNullException.ThrowIfNull(output);
        switch (dialect)
        {
            case LlmDialect.OpenAIChat:
                WriteChat(response, includeUsage, output);
                break;
            case LlmDialect.OpenAIResponses:
                WriteResponses(response, output);
                break;
            case LlmDialect.AnthropicMessages:
                WriteAnthropic(response, output);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(dialect), dialect, "Only generation dialects stream.");
        }
    }

    /// <summary>Writes one SSE event (<paramref name="name"/> may be null for OpenAI chat's unnamed events).</summary>
    public static void WriteEvent(IBufferWriter<byte> output, string? name, string data)
    {
        ArgumentNullException.ThrowIfNull(output);
        var text = name is null ? $"data: {data}\n\n" : $"event: {name}\ndata: {data}\n\n";
        var bytes = Encoding.UTF8.GetBytes(text);
        output.Write(bytes);
    }

    private static void WriteChat(JsonObject response, bool includeUsage, IBufferWriter<byte> output)
    {
        JsonObject Chunk(JsonArray choices)
        {
            var chunk = new JsonObject
            {
                ["id"] = response["id"]?.DeepClone(),
                ["object"] = "chat.completion.chunk",
                ["created"] = response["created"]?.DeepClone(),
                ["model"] = response["model"]?.DeepClone(),
            };
            if (response["system_fingerprint"] is { } fp)
            {
                chunk["system_fingerprint"] = fp.DeepClone();
            }

            chunk["choices"] = choices;
            return chunk;
        }

        foreach (var choice in response["choices"] as JsonArray ?? [])
        {
            if (choice is not JsonObject c)
            {
                continue;
            }

            var message = c["message"] as JsonObject ?? [];
            var delta = new JsonObject { ["role"] = message["role"]?.DeepClone() ?? "assistant", ["content"] = message["content"]?.DeepClone() };
            if (message["refusal"] is { } refusal)
            {
                delta["refusal"] = refusal.DeepClone();
            }

            if (message["tool_calls"] is JsonArray calls)
            {
                var deltas = new JsonArray();
                var i = 0;
                foreach (var call in calls)
                {
                    var d = (JsonObject)call!.DeepClone();
                    d["index"] = i++;
                    deltas.Add(d);
                }

                delta["tool_calls"] = deltas;
            }

            var index = c["index"]?.DeepClone() ?? 0;
            WriteEvent(output, null, Chunk([new JsonObject { ["index"] = index, ["delta"] = delta, ["logprobs"] = null, ["finish_reason"] = null }]).ToJsonString());
            WriteEvent(output, null, Chunk([new JsonObject { ["index"] = index.DeepClone(), ["delta"] = new JsonObject(), ["logprobs"] = null, ["finish_reason"] = c["finish_reason"]?.DeepClone() }]).ToJsonString());
        }

        if (includeUsage && response["usage"] is JsonObject usage)
        {
            var chunk = Chunk([]);
            chunk["usage"] = usage.DeepClone();
            WriteEvent(output, null, chunk.ToJsonString());
        }

        WriteEvent(output, null, "[DONE]");
    }

    private static void WriteResponses(JsonObject response, IBufferWriter<byte> output)
    {
        var sequence = 0;
        void Emit(string type, JsonObject data)
        {
            var payload = new JsonObject { ["type"] = type, ["sequence_number"] = sequence++ };
            foreach (var (k, v) in data)
            {
                payload[k] = v?.DeepClone();
            }

            WriteEvent(output, type, payload.ToJsonString());
        }

        var started = (JsonObject)response.DeepClone();
        started["status"] = "in_progress";
        started["output"] = new JsonArray();
        started["usage"] = null;
        Emit("response.created", new JsonObject { ["response"] = started });
        Emit("response.in_progress", new JsonObject { ["response"] = started.DeepClone() });

        var outputIndex = 0;
        foreach (var item in response["output"] as JsonArray ?? [])
        {
            if (item is not JsonObject o)
            {
                continue;
            }

            var itemId = o["id"]?.DeepClone();
            var type = SchemaDiscovery.Str(o["type"]);
            var added = (JsonObject)o.DeepClone();
            added["status"] = "in_progress";
            if (type == "message")
            {
                added["content"] = new JsonArray();
            }
            else if (type == "function_call")
            {
                added["arguments"] = "";
            }

            Emit("response.output_item.added", new JsonObject { ["output_index"] = outputIndex, ["item"] = added });
            if (type == "message")
            {
                var contentIndex = 0;
                foreach (var part in o["content"] as JsonArray ?? [])
                {
                    if (part is not JsonObject p)
                    {
                        continue;
                    }

                    var empty = (JsonObject)p.DeepClone();
                    empty["text"] = "";
                    var where = new JsonObject { ["item_id"] = itemId?.DeepClone(), ["output_index"] = outputIndex, ["content_index"] = contentIndex };
                    Emit("response.content_part.added", With(where, "part", empty));
                    if (SchemaDiscovery.Str(p["type"]) == "output_text")
                    {
                        Emit("response.output_text.delta", With(where, "delta", p["text"]?.DeepClone()));
                        Emit("response.output_text.done", With(where, "text", p["text"]?.DeepClone()));
                    }

                    Emit("response.content_part.done", With(where, "part", p.DeepClone()));
                    contentIndex++;
                }
            }
            else if (type == "function_call")
            {
                var where = new JsonObject { ["item_id"] = itemId?.DeepClone(), ["output_index"] = outputIndex };
                Emit("response.function_call_arguments.delta", With(where, "delta", o["arguments"]?.DeepClone()));
                Emit("response.function_call_arguments.done", With(where, "arguments", o["arguments"]?.DeepClone()));
            }

            Emit("response.output_item.done", new JsonObject { ["output_index"] = outputIndex, ["item"] = o.DeepClone() });
            outputIndex++;
        }

        Emit("response.completed", new JsonObject { ["response"] = response.DeepClone() });
    }

    private static JsonObject With(JsonObject where, string name, JsonNode? value)
    {
        var copy = (JsonObject)where.DeepClone();
        copy[name] = value;
        return copy;
    }

    private static void WriteAnthropic(JsonObject response, IBufferWriter<byte> output)
    {
        var start = (JsonObject)response.DeepClone();
        start["content"] = new JsonArray();
        start["stop_reason"] = null;
        start["stop_sequence"] = null;
        if (start["usage"] is JsonObject startUsage)
        {
            startUsage["output_tokens"] = 0;
        }

        WriteEvent(output, "message_start", new JsonObject { ["type"] = "message_start", ["message"] = start }.ToJsonString());
        var index = 0;
        foreach (var block in response["content"] as JsonArray ?? [])
        {
            if (block is not JsonObject b)
            {
                continue;
            }

            var type = SchemaDiscovery.Str(b["type"]);
            var opening = (JsonObject)b.DeepClone();
            JsonObject? delta = null;
            if (type == "text")
            {
                opening["text"] = "";
                delta = new JsonObject { ["type"] = "text_delta", ["text"] = b["text"]?.DeepClone() };
            }
            else if (type == "tool_use")
            {
                opening["input"] = new JsonObject();
                delta = new JsonObject { ["type"] = "input_json_delta", ["partial_json"] = b["input"]?.ToJsonString() ?? "{}" };
            }

            WriteEvent(output, "content_block_start", new JsonObject { ["type"] = "content_block_start", ["index"] = index, ["content_block"] = opening }.ToJsonString());
            if (delta is not null)
            {
                WriteEvent(output, "content_block_delta", new JsonObject { ["type"] = "content_block_delta", ["index"] = index, ["delta"] = delta }.ToJsonString());
            }

            WriteEvent(output, "content_block_stop", new JsonObject { ["type"] = "content_block_stop", ["index"] = index }.ToJsonString());
            index++;
        }

        WriteEvent(output, "message_delta", new JsonObject
        {
            ["type"] = "message_delta",
            ["delta"] = new JsonObject { ["stop_reason"] = response["stop_reason"]?.DeepClone(), ["stop_sequence"] = response["stop_sequence"]?.DeepClone() },
            ["usage"] = response["usage"]?.DeepClone(),
        }.ToJsonString());
        WriteEvent(output, "message_stop", """{"type":"message_stop"}""");
    }
}
