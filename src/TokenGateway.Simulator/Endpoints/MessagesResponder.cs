using System.Buffers;
using System.Text.Json;
using System.Text.Json.Nodes;
using TokenGateway.Simulator.Generation;
using TokenGateway.Simulator.Prompts;

namespace TokenGateway.Simulator.Endpoints;

/// <summary>Anthropic <c>POST /v1/messages</c> and <c>/v1/messages/count_tokens</c>.</summary>
internal static class MessagesResponder
{
    public static async Task CountTokensAsync(SimRequest request)
    {
        var prompt = AnthropicPromptMeter.Measure(request.Body, request.Model, request.Profile.Encoding, cache: null);
        var buffer = new ArrayBufferWriter<byte>(64);
        using (var json = JsonResponse.NewWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteNumber("input_tokens", prompt.TotalTokens);
            json.WriteEndObject();
        }

        await JsonResponse.WriteAsync(request, buffer);
    }

    public static async Task RespondAsync(SimRequest request)
    {
        var body = request.Body;
        if (!TryForcedTool(body, out var toolName, out var toolSchema, out var toolError))
        {
            await SimulatorErrors.WriteAsync(request.Http, true, 400, toolError!);
            return;
        }

        var format = (body["output_format"] ?? body["output_config"]?["format"]) as JsonObject;
        var answer = Answer.Plan(request.NewAnswerRequest() with
        {
            MaxTokens = request.ReadInt("max_tokens"),
            Schema = OpenAIPromptMeter.Str(format?["type"]) == "json_schema" ? format?["schema"] ?? new JsonObject() : null,
            ForcedTool = toolName,
            ForcedToolSchema = toolSchema,
            HasAssistantTurn = ChatCompletionsResponder.HasAssistantTurn(body["messages"]),
        });
        var prompt = AnthropicPromptMeter.Measure(body, request.Model, request.Profile.Encoding, request.Cache);
        var stopReason = answer.Truncated ? "max_tokens" : answer.Kind == AnswerKind.ToolCall ? "tool_use" : "end_turn";
        var id = Ids.New("msg_", 24);
        var toolId = Ids.New("toolu_", 24);

        if (request.Stream)
        {
            await StreamAsync(request, answer, prompt, stopReason, id, toolId);
            return;
        }

        var buffer = new ArrayBufferWriter<byte>(1024 + (answer.Content.Text.Length * 2));
        using (var json = JsonResponse.NewWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("id", id);
            json.WriteString("type", "message");
            json.WriteString("role", "assistant");
            json.WriteString("model", request.Model);
            json.WriteStartArray("content");
            json.WriteStartObject();
            if (answer.Kind == AnswerKind.ToolCall)
            {
                json.WriteString("type", "tool_use");
                json.WriteString("id", toolId);
                json.WriteString("name", answer.ToolName);
                json.WritePropertyName("input");
                WriteToolInput(json, answer.Content.Text);
            }
            else
            {
                json.WriteString("type", "text");
                json.WriteString("text", answer.Content.Text);
            }

            json.WriteEndObject();
            json.WriteEndArray();
            json.WriteString("stop_reason", stopReason);
            json.WriteNull("stop_sequence");
            if (!request.Faults.NoUsage)
            {
                WriteUsage(json, prompt, answer.OutputTokens);
            }

            json.WriteEndObject();
        }

        await JsonResponse.WriteAsync(request, buffer);
    }

    private static async Task StreamAsync(SimRequest request, Answer answer, PromptUsage prompt, string stopReason, string id, string toolId)
    {
        var usage = !request.Faults.NoUsage;
        using var sse = new SseWriter(request) { FaultAfterEvent = 3 + Math.Max(1, answer.Content.TokenCount / 2) };
        await sse.StartAsync();

        var json = Begin(sse, "message_start");
        json.WriteStartObject("message");
        json.WriteString("id", id);
        json.WriteString("type", "message");
        json.WriteString("role", "assistant");
        json.WriteString("model", request.Model);
        json.WriteStartArray("content");
        json.WriteEndArray();
        json.WriteNull("stop_reason");
        json.WriteNull("stop_sequence");
        if (usage)
        {
            WriteUsage(json, prompt, 1);
        }

        json.WriteEndObject();
        await End(sse, json);

        json = Begin(sse, "content_block_start");
        json.WriteNumber("index", 0);
        json.WriteStartObject("content_block");
        if (answer.Kind == AnswerKind.ToolCall)
        {
            json.WriteString("type", "tool_use");
            json.WriteString("id", toolId);
            json.WriteString("name", answer.ToolName);
            json.WriteStartObject("input");
            json.WriteEndObject();
        }
        else
        {
            json.WriteString("type", "text");
            json.WriteString("text", string.Empty);
        }

        json.WriteEndObject();
        await End(sse, json);

        json = Begin(sse, "ping");
        await End(sse, json);

        for (var i = 0; i < answer.Content.TokenCount; i++)
        {
            var piece = answer.Content.Piece(i);
            if (piece.IsEmpty)
            {
                continue;
            }

            json = Begin(sse, "content_block_delta");
            json.WriteNumber("index", 0);
            json.WriteStartObject("delta");
            if (answer.Kind == AnswerKind.ToolCall)
            {
                json.WriteString("type", "input_json_delta");
                json.WriteString("partial_json", piece);
            }
            else
            {
                json.WriteString("type", "text_delta");
                json.WriteString("text", piece);
            }

            json.WriteEndObject();
            await End(sse, json);
        }

        json = Begin(sse, "content_block_stop");
        json.WriteNumber("index", 0);
        await End(sse, json);

        json = Begin(sse, "message_delta");
        json.WriteStartObject("delta");
        json.WriteString("stop_reason", stopReason);
        json.WriteNull("stop_sequence");
        json.WriteEndObject();
        if (usage)
        {
            json.WriteStartObject("usage");
            json.WriteNumber("output_tokens", answer.OutputTokens);
            json.WriteEndObject();
        }

        await End(sse, json);

        json = Begin(sse, "message_stop");
        await End(sse, json);
    }

    private static Utf8JsonWriter Begin(SseWriter sse, string type)
    {
        var json = sse.Begin(type);
        json.WriteStartObject();
        json.WriteString("type", type);
        return json;
    }

    private static ValueTask End(SseWriter sse, Utf8JsonWriter json)
    {
        json.WriteEndObject();
        return sse.EndAsync();
    }

    private static void WriteUsage(Utf8JsonWriter json, PromptUsage prompt, int outputTokens)
    {
        json.WriteStartObject("usage");
        json.WriteNumber("input_tokens", prompt.UncachedTokens);
        json.WriteNumber("cache_creation_input_tokens", prompt.CacheWriteTokens);
        json.WriteNumber("cache_read_input_tokens", prompt.CachedTokens);
        json.WriteStartObject("cache_creation");
        json.WriteNumber("ephemeral_5m_input_tokens", prompt.CacheWrite5mTokens);
        json.WriteNumber("ephemeral_1h_input_tokens", prompt.CacheWrite1hTokens);
        json.WriteEndObject();
        json.WriteNumber("output_tokens", outputTokens);
        json.WriteString("service_tier", "standard");
        json.WriteEndObject();
    }

    private static void WriteToolInput(Utf8JsonWriter json, string arguments)
    {
        try
        {
            if (JsonNode.Parse(arguments) is JsonObject input)
            {
                input.WriteTo(json);
                return;
            }
        }
        catch (JsonException)
        {
            // Truncated by max_tokens: Anthropic returns what it could parse; the simulator returns an empty input.
        }

        json.WriteStartObject();
        json.WriteEndObject();
    }

    /// <summary>The tool forced by <c>tool_choice</c> <c>{type:"tool",name}</c> or <c>{type:"any"}</c> (first tool).</summary>
    private static bool TryForcedTool(JsonObject body, out string? name, out JsonNode? schema, out string? error)
    {
        name = null;
        schema = null;
        error = null;
        var type = OpenAIPromptMeter.Str(body["tool_choice"]?["type"]);
        if (type is not ("tool" or "any"))
        {
            return true;
        }

        var wanted = type == "tool" ? OpenAIPromptMeter.Str(body["tool_choice"]?["name"]) : null;
        if (body["tools"] is JsonArray tools)
        {
            foreach (var tool in tools)
            {
                var toolName = OpenAIPromptMeter.Str(tool?["name"]);
                if (toolName is not null && (wanted is null || wanted == toolName))
                {
                    name = toolName;
                    schema = tool?["input_schema"] ?? new JsonObject { ["type"] = "object" };
                    return true;
                }
            }
        }

        error = wanted is null ? "tool_choice.type 'any' requires at least one tool." : $"Tool '{wanted}' not found in tools.";
        return false;
    }
}
