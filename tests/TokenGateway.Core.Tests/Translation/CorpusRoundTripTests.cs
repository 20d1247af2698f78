using System.Text.Json;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Tests.Optimization;
using TokenGateway.Core.Tests.Optimization.Corpus;
using TokenGateway.Core.Translation;

namespace TokenGateway.Core.Tests.Translation;

/// <summary>
/// Property: every request of the corpus' tool-calling and agent sets (BFCL multi-turn conversations with their tools,
/// and the BFCL single-call sets with assorted tool options) translates there and back without losing a field that
/// docs/translation.md promises to keep. Each side is compared in a canonical form that erases only the
/// documented equivalences (a string content equals one text part, <c>stop</c> string equals a one-element list, …).
/// </summary>
public sealed class CorpusRoundTripTests
{
    private static readonly string _corpus = CorpusPaths.Corpus();

    public static TheoryData<string> Sets => ["multi-turn", "live-simple", "simple-python"];

    [Theory]
    [MemberData(nameof(Sets))]
    public void OpenAIRequests_ThroughAnthropicAndBack_KeepEveryPromisedField(string set) =>
        AssertRoundTrips(set, OpenAIRequests(set),
            r => ChatToMessagesRequest.Translate(r), LlmDialect.AnthropicMessages,
            r => MessagesToChatRequest.Translate(r), LlmDialect.OpenAIChat, CanonicalOpenAI);

    [Theory]
    [MemberData(nameof(Sets))]
    public void AnthropicRequests_ThroughOpenAIAndBack_KeepEveryPromisedField(string set) =>
        AssertRoundTrips(set, AnthropicRequests(set),
            r => MessagesToChatRequest.Translate(r), LlmDialect.OpenAIChat,
            r => ChatToMessagesRequest.Translate(r), LlmDialect.AnthropicMessages, CanonicalAnthropic);

    private static void AssertRoundTrips(
        string set,
        IEnumerable<(string Id, JsonObject Request)> requests,
        Func<JsonObject, RequestTranslation> toThere,
        LlmDialect thereDialect,
        Func<JsonObject, RequestTranslation> toBack,
        LlmDialect backDialect,
        Func<JsonObject, JsonObject> canonical)
    {
        var count = 0;
        foreach (var (id, request) in requests)
        {
            var there = toThere(request);
            Assert.True(there.Succeeded, $"{id}: {there.ErrorMessage}");
            AssertParses(thereDialect, there.Body!);

            var back = toBack(there.Body!);
            Assert.True(back.Succeeded, $"{id}: {back.ErrorMessage}");
            AssertParses(backDialect, back.Body!);

            AssertSame(id, canonical(request), canonical(back.Body!));
            count++;
        }

        Assert.True(count >= 100, $"only {count} requests in {set}");
    }

    [Fact]
    public void MultiTurnConversations_HaveToolCallsAndResultsToTranslate()
    {
        var (_, request) = OpenAIRequests("multi-turn").First();
        var messages = ChatToMessagesRequest.Translate(request).Body!["messages"]!.AsArray();

        Assert.Contains(messages, m => m!["content"] is JsonArray blocks && blocks.Any(b => (string?)b!["type"] == "tool_use"));
        Assert.Contains(messages, m => m!["content"] is JsonArray blocks && blocks.Any(b => (string?)b!["type"] == "tool_result"));
    }

    private static void AssertParses(LlmDialect dialect, JsonObject body)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(body, LlmRequestParser.WriteOptions);
        Assert.True(LlmRequestParser.TryParse(dialect, bytes, out var parsed, out var error), error.Message);
        parsed!.Dispose();
    }

    private static void AssertSame(string id, JsonNode expected, JsonNode actual) =>
        Assert.True(JsonNode.DeepEquals(expected, actual), $"{id}\nexpected {expected.ToJsonString()}\nactual   {actual.ToJsonString()}");

    // ------------------------------------------------------------------ corpus requests

    private static IEnumerable<(string Id, JsonObject Request)> OpenAIRequests(string set)
    {
        if (set == "multi-turn")
        {
            foreach (var entry in BenchmarkCorpus.BfclEntries(_corpus))
            {
                var request = BenchmarkCorpus.OpenAIConversation(_corpus, entry, turns: int.MaxValue);
                yield return (request.Id, request.Body);
            }

            yield break;
        }

        var i = 0;
        foreach (var entry in SingleCallEntries(set))
        {
            var functions = entry["function"]!.AsArray();
            var request = new JsonObject
            {
                ["model"] = "gpt-4o",
                ["messages"] = entry["question"]![0]!.DeepClone(),
                ["tools"] = new JsonArray(functions.Select(f => (JsonNode)new JsonObject
                {
                    ["type"] = "function",
                    ["function"] = new JsonObject
                    {
                        ["name"] = f!["name"]!.DeepClone(),
                        ["description"] = f["description"]!.DeepClone(),
                        ["parameters"] = Objects(f["parameters"]!.DeepClone()),
                    },
                }).ToArray()),
            };
            Vary(request, i++, (string)functions[0]!["name"]!, openAI: true);
            yield return ((string)entry["id"]!, request);
        }
    }

    private static IEnumerable<(string Id, JsonObject Request)> AnthropicRequests(string set)
    {
        if (set == "multi-turn")
        {
            foreach (var entry in BenchmarkCorpus.BfclEntries(_corpus))
            {
                var request = BenchmarkCorpus.AnthropicConversation(_corpus, entry, turns: int.MaxValue);
                yield return (request.Id, request.Body);
            }

            yield break;
        }

        var i = 0;
        foreach (var entry in SingleCallEntries(set))
        {
            var functions = entry["function"]!.AsArray();
            var request = new JsonObject
            {
                ["model"] = "claude-sonnet-4-5",
                ["max_tokens"] = 1024,
                ["messages"] = new JsonArray(entry["question"]![0]!.AsArray().Where(m => (string?)m!["role"] != "system").Select(m => m!.DeepClone()).ToArray()),
                ["tools"] = new JsonArray(functions.Select(f => (JsonNode)new JsonObject
                {
                    ["name"] = f!["name"]!.DeepClone(),
                    ["description"] = f["description"]!.DeepClone(),
                    ["input_schema"] = Objects(f["parameters"]!.DeepClone()),
                }).ToArray()),
            };
            if (entry["question"]![0]!.AsArray().FirstOrDefault(m => (string?)m!["role"] == "system") is { } system)
            {
                request["system"] = system["content"]!.DeepClone(); // Anthropic's system prompt is top-level
            }

            Vary(request, i++, (string)functions[0]!["name"]!, openAI: false);
            yield return ((string)entry["id"]!, request);
        }
    }

    /// <summary>Exercises the documented options on a rotating basis: tool choice forms, parallelism, sampling, stop, stream, user, schema, reasoning.</summary>
    private static void Vary(JsonObject request, int i, string firstTool, bool openAI)
    {
        switch (i % 5)
        {
            case 0:
                request["tool_choice"] = openAI ? "required" : new JsonObject { ["type"] = "any" };
                break;
            case 1:
                request["tool_choice"] = openAI
                    ? new JsonObject { ["type"] = "function", ["function"] = new JsonObject { ["name"] = firstTool } }
                    : new JsonObject { ["type"] = "tool", ["name"] = firstTool };
                request["temperature"] = 0.3;
                break;
            case 2:
                if (openAI)
                {
                    request["parallel_tool_calls"] = false;
                    request["top_p"] = 0.9;
                    request["stop"] = new JsonArray("END", "STOP");
                    request["max_completion_tokens"] = 700;
                }
                else
                {
                    request["tool_choice"] = new JsonObject { ["type"] = "auto", ["disable_parallel_tool_use"] = true };
                    request["top_p"] = 0.9;
                    request["stop_sequences"] = new JsonArray("END", "STOP");
                }

                break;
            case 3:
                request["stream"] = true;
                if (openAI)
                {
                    request["stream_options"] = new JsonObject { ["include_usage"] = true };
                    request["user"] = "user-" + i;
                }
                else
                {
                    request["metadata"] = new JsonObject { ["user_id"] = "user-" + i };
                }

                break;
            default:
                var schema = JsonNode.Parse("""{"type":"object","properties":{"answer":{"type":"string"}},"required":["answer"],"additionalProperties":false}""");
                if (openAI)
                {
                    request["reasoning_effort"] = "medium";
                    request["response_format"] = new JsonObject
                    {
                        ["type"] = "json_schema",
                        ["json_schema"] = new JsonObject { ["name"] = "response", ["schema"] = schema, ["strict"] = true },
                    };
                    request["max_completion_tokens"] = 12000;
                }
                else
                {
                    request["max_tokens"] = 12000;
                    request["thinking"] = new JsonObject { ["type"] = "enabled", ["budget_tokens"] = 8192 };
                    request["output_config"] = new JsonObject { ["format"] = new JsonObject { ["type"] = "json_schema", ["schema"] = schema } };
                }

                break;
        }
    }

    private static IEnumerable<JsonObject> SingleCallEntries(string set)
    {
        var file = set == "live-simple" ? "BFCL_v4_live_simple.json" : "BFCL_v4_simple_python.json";
        return File.ReadLines(Path.Combine(_corpus, "bfcl", file)).Select(l => JsonNode.Parse(l)!.AsObject());
    }

    /// <summary>BFCL writes <c>"type":"dict"</c>; providers want <c>"object"</c>.</summary>
    private static JsonNode Objects(JsonNode node)
    {
        if (node is JsonObject o)
        {
            foreach (var key in o.Select(p => p.Key).ToList())
            {
                if (key == "type" && o[key] is JsonValue v && v.TryGetValue<string>(out var t) && t == "dict")
                {
                    o[key] = "object";
                }
                else if (o[key] is { } child)
                {
                    Objects(child);
                }
            }
        }
        else if (node is JsonArray a)
        {
            foreach (var item in a)
            {
                if (item is not null)
                {
                    Objects(item);
                }
            }
        }

        return node;
    }

    // ------------------------------------------------------------------ canonical forms

    /// <summary>
    /// The fields docs/translation.md promises to keep for a Chat Completions request, with its documented
    /// equivalences erased: developer ≡ system, string content ≡ one text part, stop string ≡ [stop],
    /// max_tokens ≡ max_completion_tokens (absent ≡ the documented default), tool-call arguments compared as JSON.
    /// </summary>
    private static JsonObject CanonicalOpenAI(JsonObject request)
    {
        var c = new JsonObject
        {
            ["model"] = request["model"]!.DeepClone(),
            ["cap"] = (request["max_completion_tokens"] ?? request["max_tokens"])?.DeepClone()
                ?? TranslationOptions.Default.DefaultMaxTokens + (request["reasoning_effort"] is { } e ? DialectMappings.ThinkingBudgetByEffort[(string)e!] : 0),
        };
        foreach (var key in new[] { "temperature", "top_p", "user", "tool_choice", "reasoning_effort" })
        {
            if (request[key] is { } value)
            {
                c[key] = value.DeepClone();
            }
        }

        if (request["tools"] is JsonArray { Count: > 0 } && !c.ContainsKey("tool_choice"))
        {
            c["tool_choice"] = "auto"; // OpenAI's documented default when tools are present
        }

        c["stream"] = request["stream"] is { } stream && (bool)stream!;
        c["parallel"] = request["parallel_tool_calls"] is not { } p || (bool)p!;
        if (request["stop"] is { } stop)
        {
            c["stop"] = stop is JsonArray ? stop.DeepClone() : new JsonArray(stop.DeepClone());
        }

        if (request["response_format"]?["json_schema"]?["schema"] is { } schema)
        {
            c["schema"] = schema.DeepClone();
        }

        if (request["tools"] is JsonArray tools)
        {
            c["tools"] = new JsonArray(tools.Select(t => (JsonNode)t!["function"]!.DeepClone()).ToArray());
        }

        var messages = new JsonArray();
        foreach (var message in request["messages"]!.AsArray())
        {
            var role = (string)message!["role"]!;
            var m = new JsonObject { ["role"] = role == "developer" ? "system" : role };
            if (message["content"] is { } content)
            {
                m["content"] = content is JsonArray ? content.DeepClone() : new JsonArray(new JsonObject { ["type"] = "text", ["text"] = content.DeepClone() });
            }

            if (message["tool_calls"] is JsonArray calls)
            {
                m["tool_calls"] = new JsonArray(calls.Select(call => (JsonNode)new JsonObject
                {
                    ["id"] = call!["id"]!.DeepClone(),
                    ["name"] = call["function"]!["name"]!.DeepClone(),
                    ["arguments"] = JsonNode.Parse((string)call["function"]!["arguments"]!),
                }).ToArray());
            }

            if (message["tool_call_id"] is { } toolCallId)
            {
                m["tool_call_id"] = toolCallId.DeepClone();
            }

            messages.Add(m);
        }

        c["messages"] = messages;
        return c;
    }

    /// <summary>
    /// The fields docs/translation.md promises to keep for a Messages request, with its documented equivalences
    /// erased: string content (system, message or tool result) ≡ one text block.
    /// </summary>
    private static JsonObject CanonicalAnthropic(JsonObject request)
    {
        var c = new JsonObject();
        foreach (var key in new[] { "model", "max_tokens", "temperature", "top_p", "stop_sequences", "tool_choice", "metadata", "output_config" })
        {
            if (request[key] is { } value)
            {
                c[key] = value.DeepClone();
            }
        }

        c["stream"] = request["stream"] is { } stream && (bool)stream!;
        if (request["thinking"]?["budget_tokens"] is { } budget)
        {
            c["effort"] = DialectMappings.EffortForThinkingBudget((int)budget);
        }

        if (request["system"] is { } system)
        {
            c["system"] = Blocks(system);
        }

        if (request["tools"] is JsonArray tools)
        {
            c["tools"] = tools.DeepClone();
        }

        var messages = new JsonArray();
        foreach (var message in request["messages"]!.AsArray())
        {
            var blocks = Blocks(message!["content"]!);
            foreach (var block in blocks.OfType<JsonObject>())
            {
                if ((string?)block["type"] == "tool_result" && block["content"] is { } result)
                {
                    block["content"] = Blocks(result);
                }
            }

            messages.Add(new JsonObject { ["role"] = message["role"]!.DeepClone(), ["content"] = blocks });
        }

        c["messages"] = messages;
        return c;
    }

    private static JsonArray Blocks(JsonNode content) =>
        content is JsonArray array ? (JsonArray)array.DeepClone() : new JsonArray(new JsonObject { ["type"] = "text", ["text"] = content.DeepClone() });
}
