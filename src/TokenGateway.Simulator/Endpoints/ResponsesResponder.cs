using System.Buffers;
using System.Text.Json;
using System.Text.Json.Nodes;
using TokenGateway.Simulator.Generation;
using TokenGateway.Simulator.Prompts;

namespace TokenGateway.Simulator.Endpoints;

/// <summary>OpenAI <c>POST /v1/responses</c>: response objects and the typed event stream.</summary>
internal static class ResponsesResponder
{
    public static async Task RespondAsync(SimRequest request)
    {
        var body = request.Body;
        var (toolName, toolSchema) = ForcedTool(body);
        var format = body["text"]?["format"] as JsonObject;
        var formatType = OpenAIPromptMeter.Str(format?["type"]);
        var answer = Answer.Plan(request.NewAnswerRequest() with
        {
            MaxTokens = request.ReadInt("max_output_tokens"),
            ReasoningTokens = request.ReasoningTokens(OpenAIPromptMeter.Str(body["reasoning"]?["effort"])),
            Schema = formatType == "json_schema" ? format?["schema"] ?? new JsonObject() : null,
            JsonObject = formatType == "json_object",
            ForcedTool = toolName,
            ForcedToolSchema = toolSchema,
            HasAssistantTurn = body["input"] is JsonArray items && items.Any(i => OpenAIPromptMeter.Str(i?["role"]) == "assistant"),
        });
        var prompt = OpenAIPromptMeter.MeasureResponses(body, request.Model, request.Profile.Encoding, request.Cache);
        var state = new ResponseState(request, answer, prompt);

        if (request.Stream)
        {
            await StreamAsync(state);
            return;
        }

        var buffer = new ArrayBufferWriter<byte>(2048 + (answer.Content.Text.Length * 2));
        using (var json = JsonResponse.NewWriter(buffer))
        {
            WriteResponse(json, state, completed: true);
        }

        await JsonResponse.WriteAsync(request, buffer);
    }

    private static async Task StreamAsync(ResponseState s)
    {
        var answer = s.Answer;
        var sequence = 0;
        var reasoning = s.Request.Profile.IsReasoning;
        var outputIndex = reasoning ? 1 : 0;
        using var sse = new SseWriter(s.Request) { FaultAfterEvent = (reasoning ? 6 : 4) + Math.Max(1, answer.Content.TokenCount / 2) };
        await sse.StartAsync();

        var json = Begin(sse, "response.created", ref sequence);
        json.WritePropertyName("response");
        WriteResponse(json, s, completed: false);
        await End(sse, json);

        json = Begin(sse, "response.in_progress", ref sequence);
        json.WritePropertyName("response");
        WriteResponse(json, s, completed: false);
        await End(sse, json);

        if (reasoning)
        {
            foreach (var type in (string[])["response.output_item.added", "response.output_item.done"])
            {
                json = Begin(sse, type, ref sequence);
                json.WriteNumber("output_index", 0);
                json.WritePropertyName("item");
                WriteReasoningItem(json, s);
                await End(sse, json);
            }
        }

        json = Begin(sse, "response.output_item.added", ref sequence);
        json.WriteNumber("output_index", outputIndex);
        json.WritePropertyName("item");
        WriteOutputItem(json, s, completed: false);
        await End(sse, json);

        if (answer.Kind == AnswerKind.ToolCall)
        {
            for (var i = 0; i < answer.Content.TokenCount; i++)
            {
                var piece = answer.Content.Piece(i);
                if (piece.IsEmpty)
                {
                    continue;
                }

                json = Begin(sse, "response.function_call_arguments.delta", ref sequence);
                json.WriteString("item_id", s.ItemId);
                json.WriteNumber("output_index", outputIndex);
                json.WriteString("delta", piece);
                await End(sse, json);
            }

            json = Begin(sse, "response.function_call_arguments.done", ref sequence);
            json.WriteString("item_id", s.ItemId);
            json.WriteNumber("output_index", outputIndex);
            json.WriteString("arguments", answer.Content.Text);
            await End(sse, json);
        }
        else
        {
            json = Begin(sse, "response.content_part.added", ref sequence);
            WritePartAddress(json, s, outputIndex);
            json.WritePropertyName("part");
            WriteTextPart(json, string.Empty);
            await End(sse, json);

            for (var i = 0; i < answer.Content.TokenCount; i++)
            {
                var piece = answer.Content.Piece(i);
                if (piece.IsEmpty)
                {
                    continue;
                }

                json = Begin(sse, "response.output_text.delta", ref sequence);
                WritePartAddress(json, s, outputIndex);
                json.WriteString("delta", piece);
                json.WriteStartArray("logprobs");
                json.WriteEndArray();
                await End(sse, json);
            }

            json = Begin(sse, "response.output_text.done", ref sequence);
            WritePartAddress(json, s, outputIndex);
            json.WriteString("text", answer.Content.Text);
            json.WriteStartArray("logprobs");
            json.WriteEndArray();
            await End(sse, json);

            json = Begin(sse, "response.content_part.done", ref sequence);
            WritePartAddress(json, s, outputIndex);
            json.WritePropertyName("part");
            WriteTextPart(json, answer.Content.Text);
            await End(sse, json);
        }

        json = Begin(sse, "response.output_item.done", ref sequence);
        json.WriteNumber("output_index", outputIndex);
        json.WritePropertyName("item");
        WriteOutputItem(json, s, completed: true);
        await End(sse, json);

        json = Begin(sse, answer.Truncated ? "response.incomplete" : "response.completed", ref sequence);
        json.WritePropertyName("response");
        WriteResponse(json, s, completed: true);
        await End(sse, json);
    }

    private static Utf8JsonWriter Begin(SseWriter sse, string type, ref int sequence)
    {
        var json = sse.Begin(type);
        json.WriteStartObject();
        json.WriteString("type", type);
        json.WriteNumber("sequence_number", sequence++);
        return json;
    }

    private static ValueTask End(SseWriter sse, Utf8JsonWriter json)
    {
        json.WriteEndObject();
        return sse.EndAsync();
    }

    private static void WritePartAddress(Utf8JsonWriter json, ResponseState s, int outputIndex)
    {
        json.WriteString("item_id", s.ItemId);
        json.WriteNumber("output_index", outputIndex);
        json.WriteNumber("content_index", 0);
    }

    private static void WriteResponse(Utf8JsonWriter json, ResponseState s, bool completed)
    {
        var body = s.Request.Body;
        var answer = s.Answer;
        json.WriteStartObject();
        json.WriteString("id", s.ResponseId);
        json.WriteString("object", "response");
        json.WriteNumber("created_at", s.Created);
        json.WriteString("status", !completed ? "in_progress" : answer.Truncated ? "incomplete" : "completed");
        json.WriteBoolean("background", false);
        json.WriteNull("error");
        if (completed && answer.Truncated)
        {
            json.WriteStartObject("incomplete_details");
            json.WriteString("reason", "max_output_tokens");
            json.WriteEndObject();
        }
        else
        {
            json.WriteNull("incomplete_details");
        }

        Echo(json, body, "instructions", null);
        Echo(json, body, "max_output_tokens", null);
        json.WriteString("model", s.Request.Model);
        json.WriteStartArray("output");
        if (completed)
        {
            if (s.Request.Profile.IsReasoning)
            {
                WriteReasoningItem(json, s);
            }

            WriteOutputItem(json, s, completed: true);
        }

        json.WriteEndArray();
        json.WriteBoolean("parallel_tool_calls", body["parallel_tool_calls"] is not JsonValue p || p.GetValueKind() != JsonValueKind.False);
        Echo(json, body, "previous_response_id", null);
        json.WriteStartObject("reasoning");
        if (OpenAIPromptMeter.Str(body["reasoning"]?["effort"]) is { } effort)
        {
            json.WriteString("effort", effort);
        }
        else if (s.Request.Profile.IsReasoning)
        {
            json.WriteString("effort", "medium");
        }
        else
        {
            json.WriteNull("effort");
        }

        json.WriteNull("summary");
        json.WriteEndObject();
        json.WriteString("service_tier", "default");
        json.WriteBoolean("store", body["store"] is not JsonValue st || st.GetValueKind() != JsonValueKind.False);
        json.WriteNumber("temperature", body["temperature"] is JsonValue t && t.TryGetValue<double>(out var temperature) ? temperature : 1.0);
        json.WriteStartObject("text");
        json.WritePropertyName("format");
        if (body["text"]?["format"] is JsonObject format)
        {
            format.WriteTo(json);
        }
        else
        {
            json.WriteStartObject();
            json.WriteString("type", "text");
            json.WriteEndObject();
        }

        json.WriteEndObject();
        Echo(json, body, "tool_choice", "auto");
        json.WritePropertyName("tools");
        if (body["tools"] is JsonArray tools)
        {
            tools.WriteTo(json);
        }
        else
        {
            json.WriteStartArray();
            json.WriteEndArray();
        }

        json.WriteNumber("top_p", body["top_p"] is JsonValue tp && tp.TryGetValue<double>(out var topP) ? topP : 1.0);
        json.WriteString("truncation", "disabled");
        if (completed && !s.Request.Faults.NoUsage)
        {
            json.WriteStartObject("usage");
            json.WriteNumber("input_tokens", s.Prompt.TotalTokens);
            json.WriteStartObject("input_tokens_details");
            json.WriteNumber("cached_tokens", s.Prompt.CachedTokens);
            json.WriteEndObject();
            json.WriteNumber("output_tokens", answer.OutputTokens);
            json.WriteStartObject("output_tokens_details");
            json.WriteNumber("reasoning_tokens", answer.ReasoningTokens);
            json.WriteEndObject();
            json.WriteNumber("total_tokens", s.Prompt.TotalTokens + answer.OutputTokens);
            json.WriteEndObject();
        }
        else
        {
            json.WriteNull("usage");
        }

        Echo(json, body, "user", null);
        json.WritePropertyName("metadata");
        if (body["metadata"] is JsonObject metadata)
        {
            metadata.WriteTo(json);
        }
        else
        {
            json.WriteStartObject();
            json.WriteEndObject();
        }

        json.WriteEndObject();
    }

    private static void WriteReasoningItem(Utf8JsonWriter json, ResponseState s)
    {
        json.WriteStartObject();
        json.WriteString("id", s.ReasoningId);
        json.WriteString("type", "reasoning");
        json.WriteStartArray("summary");
        json.WriteEndArray();
        json.WriteEndObject();
    }

    private static void WriteOutputItem(Utf8JsonWriter json, ResponseState s, bool completed)
    {
        var answer = s.Answer;
        var status = !completed ? "in_progress" : answer.Truncated ? "incomplete" : "completed";
        json.WriteStartObject();
        json.WriteString("id", s.ItemId);
        if (answer.Kind == AnswerKind.ToolCall)
        {
            json.WriteString("type", "function_call");
            json.WriteString("status", status);
            json.WriteString("arguments", completed ? answer.Content.Text : string.Empty);
            json.WriteString("call_id", answer.ToolCallId);
            json.WriteString("name", answer.ToolName);
        }
        else
        {
            json.WriteString("type", "message");
            json.WriteString("status", status);
            json.WriteStartArray("content");
            if (completed)
            {
                WriteTextPart(json, answer.Content.Text);
            }

            json.WriteEndArray();
            json.WriteString("role", "assistant");
        }

        json.WriteEndObject();
    }

    private static void WriteTextPart(Utf8JsonWriter json, string text)
    {
        json.WriteStartObject();
        json.WriteString("type", "output_text");
        json.WriteStartArray("annotations");
        json.WriteEndArray();
        json.WriteStartArray("logprobs");
        json.WriteEndArray();
        json.WriteString("text", text);
        json.WriteEndObject();
    }

    private static void Echo(Utf8JsonWriter json, JsonObject body, string name, string? fallback)
    {
        json.WritePropertyName(name);
        if (body[name] is { } value)
        {
            value.WriteTo(json);
        }
        else if (fallback is null)
        {
            json.WriteNullValue();
        }
        else
        {
            json.WriteStringValue(fallback);
        }
    }

    private static (string? Name, JsonNode? Schema) ForcedTool(JsonObject body)
    {
        var choice = body["tool_choice"];
        var wanted = choice is JsonObject obj && OpenAIPromptMeter.Str(obj["type"]) == "function" ? OpenAIPromptMeter.Str(obj["name"]) : null;
        if (wanted is null && OpenAIPromptMeter.Str(choice) != "required")
        {
            return (null, null);
        }

        if (body["tools"] is JsonArray tools)
        {
            foreach (var tool in tools)
            {
                var name = OpenAIPromptMeter.Str(tool?["name"]);
                if (OpenAIPromptMeter.Str(tool?["type"]) == "function" && name is not null && (wanted is null || wanted == name))
                {
                    return (name, tool?["parameters"] ?? new JsonObject { ["type"] = "object", ["properties"] = new JsonObject() });
                }
            }
        }

        return (null, null);
    }

    private sealed class ResponseState(SimRequest request, Answer answer, PromptUsage prompt)
    {
        public SimRequest Request { get; } = request;
        public Answer Answer { get; } = answer;
        public PromptUsage Prompt { get; } = prompt;
        public string ResponseId { get; } = Ids.New("resp_", 32);
        public string ItemId { get; } = Ids.New(answer.Kind == AnswerKind.ToolCall ? "fc_" : "msg_", 32);
        public string ReasoningId { get; } = Ids.New("rs_", 32);
        public long Created { get; } = request.CreatedUnix;
    }
}
