using System.Text.Json.Nodes;

namespace TokenGateway.Core.Tests.Optimization.Corpus;

/// <summary>One user turn of a BFCL multi-turn conversation, as the request an agent would send at that turn.</summary>
/// <param name="Id">Entry id and turn number.</param>
/// <param name="Body">OpenAI chat body: system prompt, the earlier turns with their ground-truth calls, the turn's question, the tools.</param>
/// <param name="Expected">The functions the reference answer calls in this turn.</param>
internal sealed record BfclTurn(string Id, JsonObject Body, IReadOnlyList<string> Expected);

/// <summary>
/// Replays the 200 BFCL multi-turn conversations turn by turn from the ground truth in
/// <c>bfcl/possible_answer/BFCL_v4_multi_turn_base.json</c>. Earlier turns carry the reference calls (name and
/// arguments) with a short result; tools are every function of the entry's involved classes except its excluded ones.
/// </summary>
internal static class BfclTurns
{
    private static readonly Dictionary<string, string> _files = new(StringComparer.Ordinal)
    {
        ["GorillaFileSystem"] = "gorilla_file_system", ["TwitterAPI"] = "posting_api", ["MessageAPI"] = "message_api",
        ["TicketAPI"] = "ticket_api", ["MathAPI"] = "math_api", ["TradingBot"] = "trading_bot",
        ["TravelAPI"] = "travel_booking", ["VehicleControlAPI"] = "vehicle_control",
    };

    public static IEnumerable<BfclTurn> All(string corpusRoot)
    {
        var answers = File.ReadLines(Path.Combine(corpusRoot, "bfcl", "possible_answer", "BFCL_v4_multi_turn_base.json"))
            .Select(l => JsonNode.Parse(l)!.AsObject())
            .ToDictionary(a => (string)a["id"]!, a => a["ground_truth"]!.AsArray().Select(t => t!.AsArray().Select(c => (string)c!).ToList()).ToList(), StringComparer.Ordinal);
        foreach (var entry in BenchmarkCorpus.BfclEntries(corpusRoot))
        {
            var id = (string)entry["id"]!;
            var truth = answers[id];
            var questions = entry["question"]!.AsArray().Select(t => string.Join("\n", t!.AsArray().Select(m => (string)m!["content"]!))).ToList();
            var tools = Tools(corpusRoot, entry);
            var history = new JsonArray(new JsonObject { ["role"] = "system", ["content"] = "You are an agent operating the user's tools. Use the tools to complete each request." });
            for (var t = 0; t < questions.Count && t < truth.Count; t++)
            {
                history.Add(new JsonObject { ["role"] = "user", ["content"] = questions[t] });
                var calls = truth[t].Select(Parse).ToList();
                if (calls.Count > 0)
                {
                    yield return new BfclTurn($"{id}#{t}", new JsonObject
                    {
                        ["model"] = "gpt-4o",
                        ["messages"] = history.DeepClone(),
                        ["tools"] = tools.DeepClone(),
                    }, calls.Select(c => c.Name).Distinct(StringComparer.Ordinal).ToList());
                }

                var toolCalls = new JsonArray();
                for (var k = 0; k < calls.Count; k++)
                {
                    toolCalls.Add(new JsonObject
                    {
                        ["id"] = $"call_{t}_{k}",
                        ["type"] = "function",
                        ["function"] = new JsonObject { ["name"] = calls[k].Name, ["arguments"] = calls[k].Arguments.ToJsonString() },
                    });
                }

                if (calls.Count > 0)
                {
                    history.Add(new JsonObject { ["role"] = "assistant", ["content"] = null, ["tool_calls"] = toolCalls });
                    for (var k = 0; k < calls.Count; k++)
                    {
                        history.Add(new JsonObject { ["role"] = "tool", ["tool_call_id"] = $"call_{t}_{k}", ["content"] = "{\"status\":\"ok\"}" });
                    }
                }

                history.Add(new JsonObject { ["role"] = "assistant", ["content"] = "Done." });
            }
        }
    }

    /// <summary>The OpenAI <c>tools</c> array of an entry: its classes' functions, without <c>excluded_function</c>, <c>dict</c> → <c>object</c>.</summary>
    public static JsonArray Tools(string corpusRoot, JsonObject entry)
    {
        var excluded = (entry["excluded_function"] as JsonArray)?.Select(e => (string)e!).ToHashSet(StringComparer.Ordinal) ?? [];
        var tools = new JsonArray();
        foreach (var cls in entry["involved_classes"]!.AsArray().Select(c => (string)c!))
        {
            foreach (var line in File.ReadLines(Path.Combine(corpusRoot, "bfcl", "multi_turn_func_doc", _files[cls] + ".json")))
            {
                var f = JsonNode.Parse(line)!.AsObject();
                if (excluded.Contains((string)f["name"]!))
                {
                    continue;
                }

                var parameters = f["parameters"]!.DeepClone();
                Normalize(parameters);
                tools.Add(new JsonObject
                {
                    ["type"] = "function",
                    ["function"] = new JsonObject { ["name"] = f["name"]!.DeepClone(), ["description"] = f["description"]!.DeepClone(), ["parameters"] = parameters },
                });
            }
        }

        return tools;
    }

    /// <summary>Parses <c>name(a='x', b=2)</c> into the name and a JSON object of the argument literals (kept as text).</summary>
    private static (string Name, JsonObject Arguments) Parse(string call)
    {
        var open = call.IndexOf('(', StringComparison.Ordinal);
        var name = call[..open].Trim();
        var inner = call[(open + 1)..call.LastIndexOf(')')];
        var arguments = new JsonObject();
        var depth = 0;
        char? quote = null;
        var start = 0;
        var position = 0;
        for (var i = 0; i <= inner.Length; i++)
        {
            var c = i < inner.Length ? inner[i] : ',';
            if (quote is not null)
            {
                quote = c == quote && inner[i - 1] != '\\' ? null : quote;
                continue;
            }

            switch (c)
            {
                case '\'' or '"':
                    quote = c;
                    break;
                case '(' or '[' or '{':
                    depth++;
                    break;
                case ')' or ']' or '}':
                    depth--;
                    break;
                case ',' when depth == 0:
                    var part = inner[start..i].Trim();
                    if (part.Length > 0)
                    {
                        var eq = part.IndexOf('=', StringComparison.Ordinal);
                        var key = eq > 0 && part[..eq].All(ch => char.IsLetterOrDigit(ch) || ch == '_') ? part[..eq] : $"arg{position}";
                        arguments[key] = (eq > 0 && key != $"arg{position}" ? part[(eq + 1)..] : part).Trim().Trim('\'', '"');
                        position++;
                    }

                    start = i + 1;
                    break;
            }
        }

        return (name, arguments);
    }

    private static void Normalize(JsonNode node)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var key in o.Select(p => p.Key).ToList())
                {
                    if (key == "type" && (string?)o[key] == "dict")
                    {
                        o[key] = "object";
                    }
                    else if (o[key] is { } child)
                    {
                        Normalize(child);
                    }
                }

                break;
            case JsonArray a:
                foreach (var item in a.OfType<JsonNode>())
                {
                    Normalize(item);
                }

                break;
        }
    }
}
