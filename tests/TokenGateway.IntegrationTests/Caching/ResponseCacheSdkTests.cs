using System.ClientModel;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Anthropic;
using Anthropic.Models.Messages;
using OpenAI;
using OpenAI.Chat;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests.Caching;

/// <summary>The response cache through the Anthropic SDK, OpenAI tool calls and the Responses API, and its metrics.</summary>
public sealed class ResponseCacheSdkTests(GatewayFixture fixture) : IClassFixture<GatewayFixture>
{
    private GatewayServer Server => fixture.Server;

    [Fact]
    public async Task AnthropicSdk_MessageAndStreamedReplay_AreTheCachedAnswer()
    {
        var (teamId, key) = await CachedTeamAsync("anthropic-sdk");
        var client = new AnthropicClient { ApiKey = key, BaseUrl = Server.Address.TrimEnd('/') };
        var prompt = "Tell me about caching #" + Guid.NewGuid().ToString("N");
        MessageCreateParams Params() => new()
        {
            MaxTokens = 300,
            Model = "claude-sonnet-4-5",
            Messages = [new UserMessageParam(prompt)],
        };

        var first = await client.Messages.Create(Params());
        var second = await client.Messages.Create(Params());
        var streamed = new StringBuilder();
        await foreach (var update in client.Messages.CreateStreaming(Params()))
        {
            if (update.TryPickContentBlockDelta(out var delta) && delta.Delta.TryPickText(out var text))
            {
                streamed.Append(text.Text);
            }
        }

        var original = Text(first);
        Assert.False(string.IsNullOrEmpty(original));
        Assert.Equal(original, Text(second));
        Assert.Equal(original, streamed.ToString());
        Assert.NotEqual(first.ID, second.ID);
        Assert.Equal(1, UpstreamCalls(prompt));
        await AssertLedgerAsync(teamId, hits: 2);
    }

    [Fact]
    public async Task OpenAiSdk_ToolCallAnswer_IsCachedLikeAnyOther()
    {
        var (teamId, key) = await CachedTeamAsync("tools");
        var client = new ChatClient("gpt-4o-mini", new ApiKeyCredential(key), new OpenAIClientOptions { Endpoint = Server.OpenAIEndpoint });
        var prompt = "What is the weather in Paris? #" + Guid.NewGuid().ToString("N");
        var tool = ChatTool.CreateFunctionTool("get_weather", "Weather for a city",
            BinaryData.FromString("""{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}"""));
        ChatCompletionOptions Options() => new() { Tools = { tool }, ToolChoice = ChatToolChoice.CreateRequiredChoice() };

        var first = await client.CompleteChatAsync([new UserChatMessage(prompt)], Options());
        var second = await client.CompleteChatAsync([new UserChatMessage(prompt)], Options());
        var streamedArguments = new StringBuilder();
        string? streamedName = null;
        await foreach (var update in client.CompleteChatStreamingAsync([new UserChatMessage(prompt)], Options()))
        {
            foreach (var call in update.ToolCallUpdates)
            {
                streamedName ??= call.FunctionName;
                streamedArguments.Append(call.FunctionArgumentsUpdate?.ToString());
            }
        }

        Assert.Equal(ChatFinishReason.ToolCalls, first.Value.FinishReason);
        var call1 = Assert.Single(first.Value.ToolCalls);
        var call2 = Assert.Single(second.Value.ToolCalls);
        Assert.Equal(call1.FunctionName, call2.FunctionName);
        Assert.Equal(call1.FunctionArguments.ToString(), call2.FunctionArguments.ToString());
        Assert.Equal(call1.FunctionName, streamedName);
        Assert.Equal(call1.FunctionArguments.ToString(), streamedArguments.ToString());
        Assert.Equal(1, UpstreamCalls(prompt));
        await AssertLedgerAsync(teamId, hits: 2);
    }

    [Fact]
    public async Task Responses_StreamedMissServesAJsonHitWithTheSameText()
    {
        var (_, key) = await CachedTeamAsync("responses");
        using var http = Server.CreateClient(key);
        var prompt = "Describe the responses API #" + Guid.NewGuid().ToString("N");

        using var streamed = await http.PostAsJsonAsync("/v1/responses", new { model = "gpt-4o-mini", stream = true, input = prompt });
        var sse = await streamed.Content.ReadAsStringAsync();
        using var hit = await http.PostAsJsonAsync("/v1/responses", new { model = "gpt-4o-mini", input = prompt });
        var json = await hit.Content.ReadFromJsonAsync<JsonElement>();
        using var replay = await http.PostAsJsonAsync("/v1/responses", new { model = "gpt-4o-mini", stream = true, input = prompt });
        var replayed = await replay.Content.ReadAsStringAsync();

        Assert.Equal("miss", streamed.Headers.GetValues("x-tokengateway-cache").Single());
        Assert.Equal("hit", hit.Headers.GetValues("x-tokengateway-cache").Single());
        Assert.Equal("hit", replay.Headers.GetValues("x-tokengateway-cache").Single());
        var completed = Completed(sse);
        Assert.Equal(completed.GetProperty("id").GetString(), json.GetProperty("id").GetString()); // a stored response keeps its id
        Assert.Equal(OutputText(completed), OutputText(json));
        Assert.Equal(OutputText(completed), OutputText(Completed(replayed)));
        Assert.Contains("event: response.created", replayed, StringComparison.Ordinal);
        Assert.Equal(1, UpstreamCalls(prompt));
    }

    [Fact]
    public async Task Metrics_CountHitsMissesAndBypasses_AndDollarsSaved()
    {
        var (teamId, key) = await CachedTeamAsync("metrics");
        using var http = Server.CreateClient(key);
        var body = new { model = "gpt-4o-mini", messages = new[] { new { role = "user", content = "metrics #" + Guid.NewGuid().ToString("N") } } };
        for (var i = 0; i < 3; i++)
        {
            (await http.PostAsJsonAsync("/v1/chat/completions", body)).EnsureSuccessStatusCode();
        }

        using var off = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = JsonContent.Create(body) };
        off.Headers.Add("x-tokengateway-cache", "off");
        (await http.SendAsync(off)).EnsureSuccessStatusCode();

        var text = await TelemetryTests.ScrapeAsync(Server, $"tokengateway_cache_saved_usd_total{{otel_scope_name=\"TokenGateway\",gen_ai_request_model=\"gpt-4o-mini\",tokengateway_team=\"{teamId}\"}}");
        Assert.Equal(2, Sample(text, "tokengateway_cache_requests_total", "hit", teamId));
        Assert.Equal(1, Sample(text, "tokengateway_cache_requests_total", "miss", teamId));
        Assert.Equal(1, Sample(text, "tokengateway_cache_requests_total", "bypass", teamId));
        Assert.Contains($"tokengateway_tokens_saved_total{{otel_scope_name=\"TokenGateway\",tokengateway_stage=\"cache\",tokengateway_team=\"{teamId}\"}}", text, StringComparison.Ordinal);
        Assert.Contains("tokengateway_status=\"cache_hit\"", text, StringComparison.Ordinal);
    }

    private static double Sample(string metrics, string name, string result, string teamId)
    {
        var prefix = $"{name}{{otel_scope_name=\"TokenGateway\",tokengateway_cache_result=\"{result}\",tokengateway_team=\"{teamId}\"}} ";
        var line = metrics.Split('\n').SingleOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal))
            ?? throw new InvalidOperationException(prefix + " not in:\n" + string.Join('\n', metrics.Split('\n').Where(l => l.Contains("cache", StringComparison.Ordinal))));
        return double.Parse(line[prefix.Length..].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
    }

    private async Task<(string TeamId, string Key)> CachedTeamAsync(string name)
    {
        var (teamId, key) = await Server.CreateTeamWithKeyAsync("sdk-" + name + "-" + Guid.NewGuid().ToString("N")[..6]);
        (await Server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy", new { cache = new { enabled = true } })).EnsureSuccessStatusCode();
        return (teamId, key);
    }

    private async Task AssertLedgerAsync(string teamId, int hits)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        JsonElement usage;
        do
        {
            usage = await Server.UsageAsync($"teamId={teamId}&status=cache_hit");
        }
        while (usage.GetProperty("totals").GetProperty("requests").GetInt32() < hits && DateTime.UtcNow < deadline && await Delay());

        Assert.Equal(hits, usage.GetProperty("totals").GetProperty("requests").GetInt32());
        Assert.Equal(0m, usage.GetProperty("totals").GetProperty("costUsd").GetDecimal());
        Assert.Equal(0, usage.GetProperty("totals").GetProperty("outputTokens").GetInt32());
    }

    private static async Task<bool> Delay()
    {
        await Task.Delay(50);
        return true;
    }

    private int UpstreamCalls(string prompt) => Server.Simulator.Recorder.Snapshot().Count(r => r.BodyText.Contains(prompt, StringComparison.Ordinal));

    private static string Text(Message message) =>
        string.Concat(message.Content.Select(b => b.TryPickText(out var t) ? t.Text : ""));

    private static JsonElement Completed(string sse)
    {
        foreach (var e in sse.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            if (e.StartsWith("event: response.completed\n", StringComparison.Ordinal))
            {
                return JsonDocument.Parse(e[(e.IndexOf("data: ", StringComparison.Ordinal) + 6)..]).RootElement.GetProperty("response").Clone();
            }
        }

        throw new InvalidOperationException("No response.completed event.");
    }

    private static string OutputText(JsonElement response) => string.Concat(
        response.GetProperty("output").EnumerateArray()
            .Where(o => o.GetProperty("type").GetString() == "message")
            .SelectMany(o => o.GetProperty("content").EnumerateArray())
            .Select(c => c.TryGetProperty("text", out var t) ? t.GetString() : ""));
}
