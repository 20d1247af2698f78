using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace TokenGateway.Core.Tests.Optimization.Corpus;

/// <summary>One realistic request body built from the shared corpus.</summary>
internal sealed record CorpusRequest(string Workload, string Id, string Endpoint, JsonObject Body);

/// <summary>
/// Builds realistic request bodies from tests/corpus: data questions over pretty-printed JSON records, RAG
/// prompts, long tool-calling conversations (BFCL multi-turn) and plain chat (MT-Bench). Deterministic.
/// </summary>
internal static class BenchmarkCorpus
{
    public const string DataWorkload = "json-data";
    public const string RagWorkload = "rag";
    public const string ToolWorkload = "tool-conversation";
    public const string ChatWorkload = "plain-chat";

    private static readonly JsonSerializerOptions _pretty = new() { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static IEnumerable<CorpusRequest> All(string corpusRoot) =>
        DataRequests(corpusRoot).Concat(RagRequests(corpusRoot, 40, 8)).Concat(ToolConversations(corpusRoot, 40)).Concat(ChatRequests(corpusRoot));

    /// <summary>Questions over JSON records, pasted pretty-printed as apps usually do (text, ```json fence, tool result).</summary>
    public static IEnumerable<CorpusRequest> DataRequests(string corpusRoot)
    {
        var repos = JsonNode.Parse(File.ReadAllText(Path.Combine(corpusRoot, "toon-benchmarks", "github-repos.json")))!.AsArray();
        string[] questions =
        [
            "Which repository has the most stars?", "How many repositories are written in TypeScript?",
            "List the repositories created before 2015.", "What is the average number of forks?",
        ];
        var n = 0;
        foreach (var size in new[] { 10, 25, 50, 100 })
        {
            var slice = new JsonArray(repos.Take(size).Select(r => r!.DeepClone()).ToArray());
            var pretty = slice.ToJsonString(_pretty);
            var question = questions[n % questions.Length];
            yield return Chat(DataWorkload, $"repos-{size}-text", "gpt-4o",
                System("You are a data analyst. Answer from the data only."),
                User($"Here are the repositories:\n\n{pretty}\n\n{question}"));
            yield return Chat(DataWorkload, $"repos-{size}-fence", "gpt-4o",
                User($"```json\n{new JsonObject { ["repositories"] = slice.DeepClone() }.ToJsonString(_pretty)}\n```\n\n{question}"));
            yield return ToolResultData($"repos-{size}-tool", pretty, question);
            n++;
        }

        foreach (var entry in BfclEntries(corpusRoot).Where(e => e["initial_config"]!.ToJsonString().Length >= 1500).Take(24))
        {
            var state = entry["initial_config"]!.ToJsonString(_pretty);
            var question = (string)entry["question"]![0]![0]!["content"]!;
            yield return Chat(DataWorkload, $"bfcl-state-{entry["id"]}", "gpt-4o",
                System("You operate the user's tools. The current system state is given as JSON."),
                User($"Current state:\n{state}\n\nTask: {question}"));
        }
    }

    /// <summary>RAG prompts: per question, <paramref name="candidates"/> retrieved chunks (gold first-stage hits + same-page and other distractors).</summary>
    public static IEnumerable<CorpusRequest> RagRequests(string corpusRoot, int count, int candidates)
    {
        foreach (var (question, chunks, _) in RagCases(corpusRoot, candidates).Take(count))
        {
            var documents = string.Join("\n", chunks.Select((c, i) =>
                $"<document index=\"{i + 1}\">\n<source>{c["chunk_link"]}</source>\n<document_content>\n{c["text"]}\n</document_content>\n</document>"));
            var id = (StableHash(question) % 100000).ToString(CultureInfo.InvariantCulture);
            yield return Chat(RagWorkload, "rag-" + id, "gpt-4o",
                System("Answer using only the provided documents. Cite the document index."),
                User($"<documents>\n{documents}\n</documents>\n\nQuestion: {question}"));
        }
    }

    /// <summary>For each eval question: the question, its candidate chunks in a deterministic order, and the gold links.</summary>
    public static IEnumerable<(string Question, List<JsonObject> Chunks, HashSet<string> Gold)> RagCases(string corpusRoot, int candidates)
    {
        var docs = JsonNode.Parse(File.ReadAllText(Path.Combine(corpusRoot, "claude-cookbooks-rag", "anthropic_docs.json")))!.AsArray().Select(d => d!.AsObject()).ToList();
        var evals = JsonNode.Parse(File.ReadAllText(Path.Combine(corpusRoot, "claude-cookbooks-rag", "docs_evaluation_dataset.json")))!.AsArray();
        var q = 0;
        foreach (var item in evals)
        {
            var gold = item!["correct_chunks"]!.AsArray().Select(c => (string)c!).ToHashSet(StringComparer.Ordinal);
            var page = gold.Select(g => g.Split('#')[0]).ToHashSet(StringComparer.Ordinal);
            var chosen = docs.Where(d => gold.Contains((string)d["chunk_link"]!)).ToList();
            chosen.AddRange(docs.Where(d => !gold.Contains((string)d["chunk_link"]!) && page.Contains(((string)d["chunk_link"]!).Split('#')[0])).Take(candidates / 2));
            var stride = 7 + (q % 5);
            for (var i = (q * 31) % docs.Count; chosen.Count < candidates; i = (i + stride) % docs.Count)
            {
                if (!chosen.Contains(docs[i]))
                {
                    chosen.Add(docs[i]);
                }
            }

            // Deterministic shuffle (the same in every process) so gold chunks are not always first.
            var ordered = chosen.Take(Math.Max(candidates, chosen.Count)).OrderBy(d => StableHash((string)d["chunk_link"]!) ^ (uint)q).ToList();
            q++;
            yield return ((string)item["question"]!, ordered, gold);
        }
    }

    /// <summary>Long tool-calling conversations synthesized from BFCL multi-turn entries (OpenAI and Anthropic shapes).</summary>
    public static IEnumerable<CorpusRequest> ToolConversations(string corpusRoot, int count)
    {
        var i = 0;
        foreach (var entry in BfclEntries(corpusRoot).Take(count))
        {
            yield return i++ % 2 == 0 ? OpenAIConversation(corpusRoot, entry, turns: int.MaxValue) : AnthropicConversation(corpusRoot, entry, turns: int.MaxValue);
        }
    }

    /// <summary>One BFCL conversation as OpenAI chat, truncated to its first <paramref name="turns"/> user turns.</summary>
    public static CorpusRequest OpenAIConversation(string corpusRoot, JsonObject entry, int turns)
    {
        var messages = new JsonArray(System("You are an agent operating the user's file system, messaging and trading tools. Use the tools."));
        foreach (var (turn, t) in Turns(entry).Take(turns).Select((x, t) => (x, t)))
        {
            messages.Add(User(turn.Question));
            if (t == Math.Min(turns, Turns(entry).Count) - 1)
            {
                break; // the latest turn awaits the answer
            }

            var calls = new JsonArray();
            foreach (var (call, k) in turn.Calls.Select((c, k) => (c, k)))
            {
                calls.Add(new JsonObject
                {
                    ["id"] = $"call_{t}_{k}",
                    ["type"] = "function",
                    ["function"] = new JsonObject { ["name"] = call.Name, ["arguments"] = call.Arguments },
                });
            }

            messages.Add(new JsonObject { ["role"] = "assistant", ["content"] = null, ["tool_calls"] = calls });
            foreach (var (call, k) in turn.Calls.Select((c, k) => (c, k)))
            {
                messages.Add(new JsonObject { ["role"] = "tool", ["tool_call_id"] = $"call_{t}_{k}", ["content"] = call.Result });
            }

            messages.Add(new JsonObject { ["role"] = "assistant", ["content"] = $"Done. I used {string.Join(", ", turn.Calls.Select(c => c.Name))} for that step." });
        }

        var tools = new JsonArray(Functions(corpusRoot, entry).Select(f => (JsonNode)new JsonObject
        {
            ["type"] = "function",
            ["function"] = new JsonObject { ["name"] = f["name"]!.DeepClone(), ["description"] = f["description"]!.DeepClone(), ["parameters"] = Normalize(f["parameters"]!.DeepClone()) },
        }).ToArray());
        return new CorpusRequest(ToolWorkload, $"bfcl-{entry["id"]}-openai", "/v1/chat/completions",
            new JsonObject { ["model"] = "gpt-4o", ["messages"] = messages, ["tools"] = tools });
    }

    /// <summary>One BFCL conversation as Anthropic messages (tool_use / tool_result blocks).</summary>
    public static CorpusRequest AnthropicConversation(string corpusRoot, JsonObject entry, int turns)
    {
        var messages = new JsonArray();
        var all = Turns(entry);
        foreach (var (turn, t) in all.Take(turns).Select((x, t) => (x, t)))
        {
            var isLast = t == Math.Min(turns, all.Count) - 1;
            var user = new JsonObject { ["role"] = "user", ["content"] = turn.Question };
            messages.Add(user);
            if (isLast)
            {
                break;
            }

            var uses = new JsonArray(new JsonObject { ["type"] = "text", ["text"] = "I'll use the tools for this." });
            var results = new JsonArray();
            foreach (var (call, k) in turn.Calls.Select((c, k) => (c, k)))
            {
                uses.Add(new JsonObject { ["type"] = "tool_use", ["id"] = $"toolu_{t}_{k}", ["name"] = call.Name, ["input"] = JsonNode.Parse(call.Arguments) });
                results.Add(new JsonObject { ["type"] = "tool_result", ["tool_use_id"] = $"toolu_{t}_{k}", ["content"] = call.Result });
            }

            messages.Add(new JsonObject { ["role"] = "assistant", ["content"] = uses });
            messages.Add(new JsonObject { ["role"] = "user", ["content"] = results });
            messages.Add(new JsonObject { ["role"] = "assistant", ["content"] = $"Done. I used {string.Join(", ", turn.Calls.Select(c => c.Name))} for that step." });
        }

        // Anthropic needs alternating roles: merge the assistant "Done" with the next user turn by keeping order valid.
        var tools = new JsonArray(Functions(corpusRoot, entry).Select(f => (JsonNode)new JsonObject
        {
            ["name"] = f["name"]!.DeepClone(),
            ["description"] = f["description"]!.DeepClone(),
            ["input_schema"] = Normalize(f["parameters"]!.DeepClone()),
        }).ToArray());
        return new CorpusRequest(ToolWorkload, $"bfcl-{entry["id"]}-anthropic", "/v1/messages", new JsonObject
        {
            ["model"] = "claude-sonnet-4-5",
            ["max_tokens"] = 1024,
            ["system"] = "You are an agent operating the user's file system, messaging and trading tools. Use the tools.",
            ["messages"] = messages,
            ["tools"] = tools,
        });
    }

    /// <summary>Plain chat: MT-Bench two-turn conversations (with the GPT-4 reference answer where one exists).</summary>
    public static IEnumerable<CorpusRequest> ChatRequests(string corpusRoot)
    {
        var answers = File.ReadLines(Path.Combine(corpusRoot, "mt-bench", "reference_answer_gpt-4.jsonl"))
            .Select(l => JsonNode.Parse(l)!).ToDictionary(a => (int)a["question_id"]!, a => (string)a["choices"]![0]!["turns"]![0]!);
        foreach (var line in File.ReadLines(Path.Combine(corpusRoot, "mt-bench", "question.jsonl")))
        {
            var q = JsonNode.Parse(line)!;
            var id = (int)q["question_id"]!;
            var turns = q["turns"]!.AsArray();
            var messages = new JsonArray(User((string)turns[0]!));
            if (answers.TryGetValue(id, out var answer))
            {
                messages.Add(new JsonObject { ["role"] = "assistant", ["content"] = answer });
                messages.Add(User((string)turns[1]!));
            }

            yield return new CorpusRequest(ChatWorkload, $"mt-bench-{id}", "/v1/chat/completions",
                new JsonObject { ["model"] = "gpt-4o", ["messages"] = messages });
        }
    }

    /// <summary>FNV-1a over UTF-16 code units: unlike <see cref="string.GetHashCode()"/>, the same in every process.</summary>
    private static uint StableHash(string text)
    {
        var hash = 2166136261u;
        foreach (var c in text)
        {
            hash = (hash ^ c) * 16777619u;
        }

        return hash;
    }

    public static IEnumerable<JsonObject> BfclEntries(string corpusRoot) =>
        File.ReadLines(Path.Combine(corpusRoot, "bfcl", "BFCL_v4_multi_turn_base.json")).Select(l => JsonNode.Parse(l)!.AsObject());

    private sealed record Call(string Name, string Arguments, string Result);

    private sealed record Turn(string Question, List<Call> Calls);

    /// <summary>Distributes the entry's ground-truth path over its turns; results are pretty-printed state, as tools return it.</summary>
    private static List<Turn> Turns(JsonObject entry)
    {
        var questions = entry["question"]!.AsArray().Select(t => (string)t!.AsArray().Last()!["content"]!).ToList();
        var path = entry["path"]!.AsArray().Select(p => (string)p!).ToList();
        var config = entry["initial_config"]!.AsObject();
        var turns = new List<Turn>();
        for (var t = 0; t < questions.Count; t++)
        {
            var calls = new List<Call>();
            for (var k = t; k < path.Count; k += questions.Count)
            {
                var parts = path[k].Split('.');
                var state = config[parts[0]]?.ToJsonString(_pretty) ?? "{}";
                var arguments = new JsonObject { ["query"] = questions[t].Length > 40 ? questions[t][..40] : questions[t] }.ToJsonString();
                calls.Add(new Call(parts[^1], arguments, state));
            }

            if (calls.Count == 0)
            {
                calls.Add(new Call("ls", "{}", "{\n  \"current_directory_content\": []\n}"));
            }

            turns.Add(new Turn(questions[t], calls));
        }

        return turns;
    }

    private static List<JsonObject> Functions(string corpusRoot, JsonObject entry)
    {
        var files = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["GorillaFileSystem"] = "gorilla_file_system", ["TwitterAPI"] = "posting_api", ["MessageAPI"] = "message_api",
            ["TicketAPI"] = "ticket_api", ["MathAPI"] = "math_api", ["TradingBot"] = "trading_bot",
            ["TravelAPI"] = "travel_booking", ["VehicleControlAPI"] = "vehicle_control",
        };
        var functions = new List<JsonObject>();
        foreach (var cls in entry["involved_classes"]!.AsArray().Select(c => (string)c!))
        {
            if (files.TryGetValue(cls, out var file))
            {
                functions.AddRange(File.ReadLines(Path.Combine(corpusRoot, "bfcl", "multi_turn_func_doc", file + ".json")).Select(l => JsonNode.Parse(l)!.AsObject()));
            }
        }

        return functions;
    }

    /// <summary>BFCL uses <c>"type":"dict"</c>; providers want <c>"object"</c>.</summary>
    private static JsonNode Normalize(JsonNode node)
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
                foreach (var item in a)
                {
                    if (item is not null)
                    {
                        Normalize(item);
                    }
                }

                break;
        }

        return node;
    }

    private static CorpusRequest ToolResultData(string id, string pretty, string question) =>
        new(DataWorkload, id, "/v1/chat/completions", new JsonObject
        {
            ["model"] = "gpt-4o",
            ["messages"] = new JsonArray(
                User(question),
                new JsonObject
                {
                    ["role"] = "assistant",
                    ["content"] = null,
                    ["tool_calls"] = new JsonArray(new JsonObject
                    {
                        ["id"] = "call_1", ["type"] = "function",
                        ["function"] = new JsonObject { ["name"] = "list_repositories", ["arguments"] = "{}" },
                    }),
                },
                new JsonObject { ["role"] = "tool", ["tool_call_id"] = "call_1", ["content"] = pretty }),
        });

    private static CorpusRequest Chat(string workload, string id, string model, params JsonObject[] messages) =>
        new(workload, id, "/v1/chat/completions", new JsonObject { ["model"] = model, ["messages"] = new JsonArray(messages) });

    private static JsonObject System(string text) => new() { ["role"] = "system", ["content"] = text };

    private static JsonObject User(string text) => new() { ["role"] = "user", ["content"] = text };
}
