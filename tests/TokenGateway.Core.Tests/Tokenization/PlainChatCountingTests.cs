using System.Text;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Models;
using TokenGateway.Core.Tests.Fixtures;
using TokenGateway.Core.Tokenization;

namespace TokenGateway.Core.Tests.Tokenization;

/// <summary>The document-level count of plain chat requests equals the tree walk's count, for every shape.</summary>
public sealed class PlainChatCountingTests
{
    private static readonly ChatRequestTokenCounter _sut = new(TiktokenTokenizerRegistry.Shared);
    private static readonly ModelCard _gpt = new() { Name = "gpt-4o", Provider = "openai", Tokenizer = "o200k_base" };
    private static readonly ModelCard _gpt4 = new() { Name = "gpt-4", Provider = "openai", Tokenizer = "cl100k_base" };
    private static readonly ModelCard _claude = new() { Name = "claude-sonnet-4-5", Provider = "anthropic", Tokenizer = "claude" };

    [Fact]
    public void CountInputTokens_RandomShapes_DocumentPathEqualsTreeWalk()
    {
        var random = new Random(20261128);
        var plain = 0;
        for (var i = 0; i < 1500; i++)
        {
            var body = RandomBody(random);
            foreach (var card in new[] { _gpt, _gpt4, _claude })
            {
                var (fast, tree, tookFastPath) = CountBothWays(body, card);
                Assert.True(fast == tree, $"case {i} ({card.Tokenizer}): document {fast} vs tree {tree}\n{body}");
                plain += tookFastPath ? 1 : 0;
            }
        }

        Assert.True(plain > 1000, $"only {plain} cases took the document path"); // the generator must exercise it
    }

    [Fact]
    public void CountInputTokens_MtBenchAndBfclConversations_DocumentPathEqualsTreeWalk()
    {
        var root = Optimization.CorpusPaths.Corpus();
        var bodies = new List<string>();
        foreach (var line in File.ReadLines(Path.Combine(root, "bfcl", "BFCL_v4_multi_turn_base.json")).Where(l => l.Length > 0).Take(100))
        {
            var messages = new JsonArray();
            foreach (var turn in (JsonArray)JsonNode.Parse(line)!["question"]!)
            {
                foreach (var message in (JsonArray)turn!)
                {
                    messages.Add(message!.DeepClone());
                }
            }

            bodies.Add(new JsonObject { ["model"] = "gpt-4o", ["messages"] = messages }.ToJsonString());
        }

        Assert.True(bodies.Count >= 50, "corpus not found or truncated");
        foreach (var body in bodies)
        {
            var (fast, tree, tookFastPath) = CountBothWays(body, _gpt);
            Assert.Equal(tree, fast);
            Assert.True(tookFastPath);
        }
    }

    [Fact]
    public void CountInputTokens_RandomShapes_DocumentPathAnatomyEqualsTreeWalkAndSumsToCount()
    {
        var random = new Random(20261203);
        for (var i = 0; i < 1000; i++)
        {
            var body = RandomBody(random);
            var bytes = Encoding.UTF8.GetBytes(body);
            foreach (var card in new[] { _gpt, _gpt4, _claude })
            {
                Assert.True(LlmRequestParser.TryParseBorrowed(LlmDialect.OpenAIChat, bytes, out var borrowed, out var error), error.Message);
                using (borrowed)
                {
                    Assert.True(LlmRequestParser.TryParse(LlmDialect.OpenAIChat, bytes, out var copied, out _));
                    var tree = _sut.CountInputTokens(LlmDialect.OpenAIChat, copied!.Body, card, out var treeAnatomy);
                    var fast = _sut.CountInputTokens(borrowed!, card, out var fastAnatomy);
                    Assert.True(treeAnatomy == fastAnatomy, $"case {i} ({card.Tokenizer}): document {fastAnatomy} vs tree {treeAnatomy}\n{body}");
                    Assert.Equal(fast, fastAnatomy.Total);
                    Assert.Equal(tree, treeAnatomy.Total);
                }
            }
        }
    }

    private static (int Fast, int Tree, bool TookFastPath) CountBothWays(string body, ModelCard card)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        Assert.True(LlmRequestParser.TryParseBorrowed(LlmDialect.OpenAIChat, bytes, out var borrowed, out var error), error.Message);
        using (borrowed)
        {
            Assert.True(LlmRequestParser.TryParse(LlmDialect.OpenAIChat, bytes, out var copied, out _));
            var tree = _sut.CountInputTokens(LlmDialect.OpenAIChat, copied!.Body, card);
            var fast = _sut.CountInputTokens(borrowed!, card);
            Assert.True(borrowed!.TryGetOriginalRoot(out var root));
            var tally = new ChatRequestTokenCounter.Tally(TiktokenTokenizerRegistry.Shared.Get(card.Tokenizer));
            return (fast, tree, ChatRequestTokenCounter.TryCountPlainOpenAIChat(ref tally, root));
        }
    }

    private static string RandomBody(Random random)
    {
        var messages = new JsonArray();
        var count = random.Next(0, 8);
        for (var m = 0; m < count; m++)
        {
            if (random.Next(30) == 0)
            {
                messages.Add(random.Next(2) == 0 ? null : JsonValue.Create("not an object"));
                continue;
            }

            var message = new JsonObject();
            AddMaybe(random, message, "role", () => random.Next(10) switch
            {
                0 => null,
                1 => JsonValue.Create(7),
                2 => JsonValue.Create("narrator"),
                _ => JsonValue.Create(new[] { "system", "user", "assistant", "developer", "tool", "function" }[random.Next(6)]),
            }, 0.95);
            AddMaybe(random, message, "content", () => RandomContent(random), 0.9);
            AddMaybe(random, message, "name", () => random.Next(4) == 0 ? null : JsonValue.Create("agent_" + random.Next(100)), 0.2);
            AddMaybe(random, message, "refusal", () => random.Next(2) == 0 ? null : JsonValue.Create("I can't help with that."), 0.1);
            AddMaybe(random, message, "tool_call_id", () => JsonValue.Create("call_" + random.Next(1000)), 0.1);
            AddMaybe(random, message, "tool_calls", () => random.Next(3) == 0 ? null : new JsonArray(new JsonObject
            {
                ["id"] = "call_1",
                ["type"] = "function",
                ["function"] = new JsonObject { ["name"] = "lookup", ["arguments"] = "{\"q\":\"x\"}" },
            }), 0.1);
            AddMaybe(random, message, "metadata", () => new JsonObject { ["k"] = "v" }, 0.05);
            messages.Add(message);
        }

        var body = new JsonObject { ["model"] = "gpt-4o", ["messages"] = messages };
        if (random.Next(15) == 0)
        {
            body["tools"] = new JsonArray(new JsonObject { ["type"] = "function", ["function"] = new JsonObject { ["name"] = "f", ["parameters"] = new JsonObject { ["type"] = "object" } } });
        }

        if (random.Next(20) == 0)
        {
            body["stream"] = true;
        }

        return body.ToJsonString();
    }

    private static JsonNode? RandomContent(Random random) => random.Next(12) switch
    {
        0 => null,
        1 => JsonValue.Create(42.5),
        2 => new JsonArray(new JsonObject { ["type"] = "text", ["text"] = "part one" }, new JsonObject { ["type"] = "text", ["text"] = "part two" }),
        3 => JsonValue.Create("Line one\nline \"two\"\ttabbed é 数据 🚀 " + new string('x', random.Next(0, 300))),
        4 => JsonValue.Create(string.Concat(Enumerable.Repeat("The quarterly report shows revenue growth. ", random.Next(1, 40)))),
        _ => JsonValue.Create("short " + random.Next(1_000_000)),
    };

    private static void AddMaybe(Random random, JsonObject target, string key, Func<JsonNode?> value, double probability)
    {
        if (random.NextDouble() < probability)
        {
            target[key] = value();
        }
    }
}
