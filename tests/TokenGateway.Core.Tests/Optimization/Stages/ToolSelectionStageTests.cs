using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Optimization;
using TokenGateway.Core.Optimization.Stages;
using TokenGateway.Core.Tests.Optimization.Corpus;
using static TokenGateway.Core.Tests.Optimization.OptimizationTestKit;

namespace TokenGateway.Core.Tests.Optimization.Stages;

public sealed class ToolSelectionStageTests
{
    private static readonly string[] _names =
    [
        "get_weather", "send_email", "create_calendar_event", "search_flights", "book_hotel", "convert_currency",
        "translate_text", "reject_request", "get_stock_price", "play_music",
    ];

    private static readonly Dictionary<string, string> _descriptions = new(StringComparer.Ordinal)
    {
        ["get_weather"] = "Get the current weather forecast for a city.",
        ["send_email"] = "Send an email message to a recipient.",
        ["create_calendar_event"] = "Create an event in the user's calendar.",
        ["search_flights"] = "Search airline flights between two airports on a date.",
        ["book_hotel"] = "Book a hotel room in a city for given nights.",
        ["convert_currency"] = "Convert an amount between two currencies.",
        ["translate_text"] = "Translate text into another language.",
        ["reject_request"] = "Refuse a request that is out of scope.",
        ["get_stock_price"] = "Get the latest price of a stock ticker.",
        ["play_music"] = "Play a song or playlist.",
    };

    private static OptimizationPolicy Policy(int maxTools, params string[] always) =>
        OptimizationPolicy.Default with { Tools = new ToolsOptions { Enabled = true, MaxTools = maxTools, Always = always } };

    private static JsonArray ChatTools() => new(_names.Select(n => (JsonNode)new JsonObject
    {
        ["type"] = "function",
        ["function"] = new JsonObject
        {
            ["name"] = n, ["description"] = _descriptions[n],
            ["parameters"] = new JsonObject { ["type"] = "object", ["properties"] = new JsonObject { ["city"] = new JsonObject { ["type"] = "string" } } },
        },
    }).ToArray());

    private static JsonArray ResponsesTools() => new(_names.Select(n => (JsonNode)new JsonObject
    {
        ["type"] = "function", ["name"] = n, ["description"] = _descriptions[n],
        ["parameters"] = new JsonObject { ["type"] = "object", ["properties"] = new JsonObject { ["city"] = new JsonObject { ["type"] = "string" } } },
    }).ToArray());

    private static JsonArray AnthropicTools() => new(_names.Select(n => (JsonNode)new JsonObject
    {
        ["name"] = n, ["description"] = _descriptions[n],
        ["input_schema"] = new JsonObject { ["type"] = "object", ["properties"] = new JsonObject { ["city"] = new JsonObject { ["type"] = "string" } } },
    }).ToArray());

    private static List<string> Sent(LlmRequest request) => request.Body["tools"]!.AsArray().Select(t => (string)(t!["function"] ?? t)["name"]!).ToList();

    [Fact]
    public void Apply_ChatWithManyTools_KeepsTheMostRelevantInDeclaredOrderAndSavesBilledTokens()
    {
        var body = new JsonObject
        {
            ["model"] = "gpt-4o",
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "What's the weather in Paris, and find me flights from JFK to CDG on Friday?" }),
            ["tools"] = ChatTools(),
        };
        var json = body.ToJsonString();
        var before = Count(Parse(LlmDialect.OpenAIChat, json));

        var (_, saved, request) = RunStage(new ToolSelectionStage(), LlmDialect.OpenAIChat, json, Policy(3));

        var sent = Sent(request);
        Assert.Equal(3, sent.Count);
        Assert.Contains("get_weather", sent);
        Assert.Contains("search_flights", sent);
        Assert.Equal(sent, _names.Where(sent.Contains)); // declared order kept
        Assert.True(request.IsModified);
        Assert.Equal(before - Count(request), saved);
        Assert.True(saved > 50, $"saved {saved}");
    }

    [Fact]
    public void Apply_PinnedTools_AlwaysListToolChoiceAndCalledToolsKept()
    {
        var body = new JsonObject
        {
            ["model"] = "gpt-4o",
            ["messages"] = new JsonArray(
                new JsonObject { ["role"] = "user", ["content"] = "Play something relaxing." },
                new JsonObject
                {
                    ["role"] = "assistant", ["content"] = null,
                    ["tool_calls"] = new JsonArray(new JsonObject
                    {
                        ["id"] = "call_1", ["type"] = "function",
                        ["function"] = new JsonObject { ["name"] = "play_music", ["arguments"] = "{}" },
                    }),
                },
                new JsonObject { ["role"] = "tool", ["tool_call_id"] = "call_1", ["content"] = "playing" },
                new JsonObject { ["role"] = "user", ["content"] = "Now email Bob the weather in Rome." }),
            ["tools"] = ChatTools(),
            ["tool_choice"] = new JsonObject { ["type"] = "function", ["function"] = new JsonObject { ["name"] = "convert_currency" } },
        };

        var (_, _, request) = RunStage(new ToolSelectionStage(), LlmDialect.OpenAIChat, body.ToJsonString(), Policy(5, "reject_request", "not_declared"));

        var sent = Sent(request);
        Assert.Equal(5, sent.Count);
        Assert.Contains("reject_request", sent);
        Assert.Contains("convert_currency", sent);
        Assert.Contains("play_music", sent);
        Assert.Contains("send_email", sent);
        Assert.Contains("get_weather", sent);
    }

    [Fact]
    public void Apply_MorePinnedThanMaxTools_KeepsOnlyPinnedAndNeverZero()
    {
        var json = new JsonObject
        {
            ["model"] = "gpt-4o",
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "zzz qqq" }), // matches nothing
            ["tools"] = ChatTools(),
        }.ToJsonString();

        var (once, _, first) = RunStage(new ToolSelectionStage(), LlmDialect.OpenAIChat, json, Policy(1));
        Assert.Single(Sent(first)); // no term matches: still one tool, the first declared

        var (_, _, pinned) = RunStage(new ToolSelectionStage(), LlmDialect.OpenAIChat, json, Policy(2, "play_music", "send_email", "book_hotel"));
        Assert.Equal(["send_email", "book_hotel", "play_music"], Sent(pinned));

        var (twice, savedAgain, _) = RunStage(new ToolSelectionStage(), LlmDialect.OpenAIChat, once, Policy(1));
        Assert.Equal(once, twice);
        Assert.Equal(0, savedAgain);
    }

    [Fact]
    public void Apply_ToolCountWithinMaxTools_RequestUntouched()
    {
        var json = new JsonObject
        {
            ["model"] = "gpt-4o",
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "weather?" }),
            ["tools"] = ChatTools(),
        }.ToJsonString();

        var (output, saved, request) = RunStage(new ToolSelectionStage(), LlmDialect.OpenAIChat, json, Policy(10));

        Assert.Equal(0, saved);
        Assert.False(request.IsModified);
        Assert.Equal(json, output);
    }

    [Fact]
    public void Apply_SameConversationInEveryDialect_SelectsTheSameTools()
    {
        const string Question = "Book a hotel in Lisbon and translate the confirmation into Portuguese.";
        var chat = new JsonObject { ["model"] = "gpt-4o", ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = Question }), ["tools"] = ChatTools() };
        var responses = new JsonObject
        {
            ["model"] = "gpt-4o",
            ["input"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = new JsonArray(new JsonObject { ["type"] = "input_text", ["text"] = Question }) }),
            ["tools"] = new JsonArray([.. ResponsesTools().Select(t => t!.DeepClone()), new JsonObject { ["type"] = "web_search" }]),
        };
        var anthropic = new JsonObject
        {
            ["model"] = "claude-sonnet-4-5", ["max_tokens"] = 100,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = Question }),
            ["tools"] = new JsonArray([.. AnthropicTools().Select(t => t!.DeepClone()), new JsonObject { ["type"] = "web_search_20250305", ["name"] = "web_search" }]),
        };

        var (_, chatSaved, c) = RunStage(new ToolSelectionStage(), LlmDialect.OpenAIChat, chat.ToJsonString(), Policy(2));
        var (_, responsesSaved, r) = RunStage(new ToolSelectionStage(), LlmDialect.OpenAIResponses, responses.ToJsonString(), Policy(2));
        var (_, anthropicSaved, a) = RunStage(new ToolSelectionStage(), LlmDialect.AnthropicMessages, anthropic.ToJsonString(), Policy(2));

        Assert.Equal(["book_hotel", "translate_text"], Sent(c));
        Assert.Equal(["book_hotel", "translate_text", "web_search"], r.Body["tools"]!.AsArray().Select(t => (string?)t!["name"] ?? (string)t["type"]!));
        Assert.Equal(["book_hotel", "translate_text", "web_search"], Sent(a)); // the server tool is kept as declared
        Assert.All(new[] { chatSaved, responsesSaved, anthropicSaved }, s => Assert.True(s > 0));
    }

    [Fact]
    public void Apply_AnthropicCalledToolsAndNamedToolChoice_Pinned()
    {
        var anthropic = new JsonObject
        {
            ["model"] = "claude-sonnet-4-5", ["max_tokens"] = 100,
            ["messages"] = new JsonArray(
                new JsonObject { ["role"] = "user", ["content"] = "Price of AAPL?" },
                new JsonObject
                {
                    ["role"] = "assistant",
                    ["content"] = new JsonArray(new JsonObject { ["type"] = "tool_use", ["id"] = "t1", ["name"] = "get_stock_price", ["input"] = new JsonObject() }),
                },
                new JsonObject
                {
                    ["role"] = "user",
                    ["content"] = new JsonArray(new JsonObject { ["type"] = "tool_result", ["tool_use_id"] = "t1", ["content"] = "190" }),
                },
                new JsonObject { ["role"] = "assistant", ["content"] = "It is 190." },
                new JsonObject { ["role"] = "user", ["content"] = "Convert 190 dollars into euros." }),
            ["tools"] = AnthropicTools(),
            ["tool_choice"] = new JsonObject { ["type"] = "tool", ["name"] = "send_email" },
        };

        var (_, _, request) = RunStage(new ToolSelectionStage(), LlmDialect.AnthropicMessages, anthropic.ToJsonString(), Policy(3));

        Assert.Equal(["send_email", "convert_currency", "get_stock_price"], Sent(request));
    }

    [Fact]
    public void Run_ToolsStageFirst_TrimBudgetsAgainstTheSmallerRequest()
    {
        var turn = BfclTurns.All(CorpusPaths.Corpus()).First(t => t.Body["tools"]!.AsArray().Count > 20 && t.Body["messages"]!.AsArray().Count > 6);
        var json = turn.Body.ToJsonString();
        var full = Count(Parse(LlmDialect.OpenAIChat, json));
        var (_, toolSaving, _) = RunStage(new ToolSelectionStage(), LlmDialect.OpenAIChat, json, Policy(4));
        var policy = Policy(4) with { Trim = new TrimOptions { MaxInputTokens = full - (toolSaving / 2) } };
        var request = Parse(LlmDialect.OpenAIChat, json);

        var result = Pipeline.Run(request, Gpt4o, policy, default);

        Assert.Equal("tools", result.Stages[0].Name);
        Assert.Equal(toolSaving, result.Stages[0].TokensSaved);
        Assert.Equal(0, result.Stages.Single(s => s.Name == "trim").TokensSaved); // the tools stage already fits the budget
        Assert.Equal(turn.Body["messages"]!.AsArray().Count, request.Body["messages"]!.AsArray().Count);
    }
}
