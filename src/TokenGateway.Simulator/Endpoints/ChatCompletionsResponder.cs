using System.Buffers;
using System.Text.Json;
using System.Text.Json.Nodes;
using TokenGateway.Simulator.Generation;
using TokenGateway.Simulator.Prompts;

namespace TokenGateway.Simulator.Endpoints;

/// <summary>OpenAI <c>POST /v1/chat/completions</c> (and Azure deployments): completion objects and chunk streams.</summary>
internal static class ChatCompletionsResponder
{
    private const string Fingerprint = "fp_simulator";

    /// <summary>OpenAI's limit on <c>n</c>.</summary>
    private const int MaxChoices = 128;

    public static async Task RespondAsync(SimRequest request)
    {
        var body = request.Body;
        if (!TryForcedTool(body, out var toolName, out var toolSchema, out var named, out var toolError))
        {
            await SimulatorErrors.WriteAsync(request.Http, false, 400, toolError!, "tool_choice");
            return;
        }

        var n = 1;
        if (body["n"] is { } nNode && nNode.GetValueKind() != JsonValueKind.Null)
        {
            if (nNode is not JsonValue nValue || !nValue.TryGetValue<int>(out n) || n is < 1 or > MaxChoices)
            {
                await SimulatorErrors.WriteAsync(request.Http, false, 400, $"'n' must be an integer from 1 to {MaxChoices}.", "n");
                return;
            }
        }

        var format = body["response_format"] as JsonObject;
        var formatType = OpenAIPromptMeter.Str(format?["type"]);
        var plan = request.NewAnswerRequest() with
        {
            MaxTokens = request.ReadInt("max_completion_tokens") ?? request.ReadInt("max_tokens"),
            ReasoningTokens = request.ReasoningTokens(OpenAIPromptMeter.Str(body["reasoning_effort"])),
            Schema = formatType == "json_schema" ? format?["json_schema"]?["schema"] ?? new JsonObject() : null,
            JsonObject = formatType == "json_object",
            ForcedTool = toolName,
            ForcedToolSchema = toolSchema,
            HasAssistantTurn = HasAssistantTurn(body["messages"]),
        };

        // n choices, like OpenAI: each its own answer (choice 0 is what n = 1 answers), each within max_tokens, and
        // usage counts the prompt once and the output of every choice.
        var answers = new Answer[n];
        for (var i = 0; i < n; i++)
        {
            answers[i] = Answer.Plan(i == 0 ? plan : plan with { Seed = plan.Seed + ((ulong)i * 0x9E3779B97F4A7C15UL) });
        }

        var prompt = OpenAIPromptMeter.MeasureChat(body, request.Model, request.Profile.Encoding, request.Cache);
        var finishes = answers.Select(a => a.Truncated ? "length" : a.Kind == AnswerKind.ToolCall && !named ? "tool_calls" : "stop").ToArray();
        var id = Ids.New("chatcmpl-", 29);

        if (request.Stream)
        {
            await StreamAsync(request, answers, prompt, finishes, id);
            return;
        }

        var buffer = new ArrayBufferWriter<byte>(1024 + answers.Sum(a => a.Content.Text.Length * 2));
        using (var json = JsonResponse.NewWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("id", id);
            json.WriteString("object", "chat.completion");
            json.WriteNumber("created", request.CreatedUnix);
            json.WriteString("model", request.Model);
            json.WriteStartArray("choices");
            for (var i = 0; i < n; i++)
            {
                WriteChoice(json, i, answers[i], finishes[i]);
            }

            json.WriteEndArray();
            if (!request.Faults.NoUsage)
            {
                WriteUsage(json, prompt, answers);
            }

            json.WriteString("service_tier", "default");
            json.WriteString("system_fingerprint", Fingerprint);
            json.WriteEndObject();
        }

        await JsonResponse.WriteAsync(request, buffer);
    }

    private static void WriteChoice(Utf8JsonWriter json, int index, Answer answer, string finish)
    {
        json.WriteStartObject();
        json.WriteNumber("index", index);
        json.WriteStartObject("message");
        json.WriteString("role", "assistant");
        if (answer.Kind == AnswerKind.ToolCall)
        {
            json.WriteNull("content");
            json.WriteNull("refusal");
            json.WriteStartArray("tool_calls");
            json.WriteStartObject();
            json.WriteString("id", answer.ToolCallId);
            json.WriteString("type", "function");
            json.WriteStartObject("function");
            json.WriteString("name", answer.ToolName);
            json.WriteString("arguments", answer.Content.Text);
            json.WriteEndObject();
            json.WriteEndObject();
            json.WriteEndArray();
        }
        else
        {
            json.WriteString("content", answer.Content.Text);
            json.WriteNull("refusal");
        }

        json.WriteStartArray("annotations");
        json.WriteEndArray();
        json.WriteEndObject();
        json.WriteNull("logprobs");
        json.WriteString("finish_reason", finish);
        json.WriteEndObject();
    }

    internal static void WriteUsage(Utf8JsonWriter json, PromptUsage prompt, Answer[] answers)
    {
        var output = answers.Sum(a => a.OutputTokens);
        var reasoning = answers.Sum(a => a.ReasoningTokens);
        json.WriteStartObject("usage");
        json.WriteNumber("prompt_tokens", prompt.TotalTokens);
        json.WriteNumber("completion_tokens", output);
        json.WriteNumber("total_tokens", prompt.TotalTokens + output);
        json.WriteStartObject("prompt_tokens_details");
        json.WriteNumber("cached_tokens", prompt.CachedTokens);
        json.WriteNumber("audio_tokens", 0);
        json.WriteEndObject();
        json.WriteStartObject("completion_tokens_details");
        json.WriteNumber("reasoning_tokens", reasoning);
        json.WriteNumber("audio_tokens", 0);
        json.WriteNumber("accepted_prediction_tokens", 0);
        json.WriteNumber("rejected_prediction_tokens", 0);
        json.WriteEndObject();
        json.WriteEndObject();
    }

    private static async Task StreamAsync(SimRequest request, Answer[] answers, PromptUsage prompt, string[] finishes, string id)
    {
        var includeUsage = request.Body["stream_options"]?["include_usage"] is JsonValue v && v.GetValueKind() == JsonValueKind.True;
        var created = request.CreatedUnix;
        using var sse = new SseWriter(request) { FaultAfterEvent = 1 + Math.Max(1, answers[0].Content.TokenCount / 2) };
        await sse.StartAsync();

        // Choices are streamed one after another, each chunk naming its choice by index (the SDKs merge by index).
        for (var index = 0; index < answers.Length; index++)
        {
            await StreamChoiceAsync(sse, request, answers[index], index, finishes[index], id, created, includeUsage);
        }

        if (includeUsage && !request.Faults.NoUsage)
        {
            var json = sse.Begin(null);
            WriteChunkHeader(json, id, created, request.Model);
            json.WriteStartArray("choices");
            json.WriteEndArray();
            WriteUsage(json, prompt, answers);
            json.WriteEndObject();
            await sse.EndAsync();
        }

        await sse.WriteDataAsync("[DONE]");
    }

    private static async Task StreamChoiceAsync(SseWriter sse, SimRequest request, Answer answer, int index, string finish, string id, long created, bool includeUsage)
    {
        var json = BeginChunk(sse, id, created, request.Model, index);
        json.WriteStartObject("delta");
        json.WriteString("role", "assistant");
        if (answer.Kind == AnswerKind.ToolCall)
        {
            json.WriteNull("content");
            json.WriteStartArray("tool_calls");
            json.WriteStartObject();
            json.WriteNumber("index", 0);
            json.WriteString("id", answer.ToolCallId);
            json.WriteString("type", "function");
            json.WriteStartObject("function");
            json.WriteString("name", answer.ToolName);
            json.WriteString("arguments", string.Empty);
            json.WriteEndObject();
            json.WriteEndObject();
            json.WriteEndArray();
        }
        else
        {
            json.WriteString("content", string.Empty);
            json.WriteNull("refusal");
        }

        json.WriteEndObject();
        await EndChunkAsync(sse, json, null, includeUsage);

        for (var i = 0; i < answer.Content.TokenCount; i++)
        {
            var piece = answer.Content.Piece(i);
            if (piece.IsEmpty)
            {
                continue;
            }

            json = BeginChunk(sse, id, created, request.Model, index);
            json.WriteStartObject("delta");
            if (answer.Kind == AnswerKind.ToolCall)
            {
                json.WriteStartArray("tool_calls");
                json.WriteStartObject();
                json.WriteNumber("index", 0);
                json.WriteStartObject("function");
                json.WriteString("arguments", piece);
                json.WriteEndObject();
                json.WriteEndObject();
                json.WriteEndArray();
            }
            else
            {
                json.WriteString("content", piece);
            }

            json.WriteEndObject();
            await EndChunkAsync(sse, json, null, includeUsage);
        }

        json = BeginChunk(sse, id, created, request.Model, index);
        json.WriteStartObject("delta");
        json.WriteEndObject();
        await EndChunkAsync(sse, json, finish, includeUsage);
    }

    private static Utf8JsonWriter BeginChunk(SseWriter sse, string id, long created, string model, int index)
    {
        var json = sse.Begin(null);
        WriteChunkHeader(json, id, created, model);
        json.WriteStartArray("choices");
        json.WriteStartObject();
        json.WriteNumber("index", index);
        return json;
    }

    private static ValueTask EndChunkAsync(SseWriter sse, Utf8JsonWriter json, string? finish, bool includeUsage)
    {
        json.WriteNull("logprobs");
        if (finish is null)
        {
            json.WriteNull("finish_reason");
        }
        else
        {
            json.WriteString("finish_reason", finish);
        }

        json.WriteEndObject();
        json.WriteEndArray();
        if (includeUsage)
        {
            json.WriteNull("usage");
        }

        json.WriteEndObject();
        return sse.EndAsync();
    }

    private static void WriteChunkHeader(Utf8JsonWriter json, string id, long created, string model)
    {
        json.WriteStartObject();
        json.WriteString("id", id);
        json.WriteString("object", "chat.completion.chunk");
        json.WriteNumber("created", created);
        json.WriteString("model", model);
        json.WriteString("service_tier", "default");
        json.WriteString("system_fingerprint", Fingerprint);
    }

    internal static bool HasAssistantTurn(JsonNode? messages) =>
        messages is JsonArray list && list.Any(m => OpenAIPromptMeter.Str(m?["role"]) == "assistant");

    /// <summary>Finds the tool a chat request forces: a named function, or the first tool for <c>required</c>.</summary>
    private static bool TryForcedTool(JsonObject body, out string? name, out JsonNode? schema, out bool named, out string? error)
    {
        name = null;
        schema = null;
        named = false;
        error = null;
        var tools = body["tools"] as JsonArray;
        var choice = body["tool_choice"];
        string? wanted = null;
        if (choice is JsonObject obj)
        {
            wanted = OpenAIPromptMeter.Str(obj["function"]?["name"]) ?? OpenAIPromptMeter.Str(obj["name"]);
            named = wanted is not null;
        }
        else if (OpenAIPromptMeter.Str(choice) != "required")
        {
            return true;
        }

        if (tools is not { Count: > 0 })
        {
            error = "'tool_choice' requires 'tools' to be a non-empty array.";
            return false;
        }

        foreach (var tool in tools)
        {
            var function = tool?["function"] as JsonObject ?? tool as JsonObject;
            var toolName = OpenAIPromptMeter.Str(function?["name"]);
            if (toolName is not null && (wanted is null || wanted == toolName))
            {
                name = toolName;
                schema = function?["parameters"] ?? new JsonObject { ["type"] = "object", ["properties"] = new JsonObject() };
                return true;
            }
        }

        error = $"Tool choice '{wanted}' does not match any tool in 'tools'.";
        return false;
    }
}
