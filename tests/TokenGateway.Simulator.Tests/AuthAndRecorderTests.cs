using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;

namespace TokenGateway.Simulator.Tests;

public sealed class AuthAndRecorderTests : IAsyncLifetime
{
    private const string Key = "sk-provider-secret";
    private SimulatorHost _sim = null!;

    public async Task InitializeAsync() => _sim = await SimulatorHost.StartAsync(o =>
    {
        o.RequiredApiKey = Key;
        o.RecordLimit = 4;
    });

    public async Task DisposeAsync() => await _sim.DisposeAsync();

    private static JsonObject Chat() => new()
    {
        ["model"] = "gpt-4o-mini",
        ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hello" }),
    };

    [Theory]
    [InlineData("Authorization", "Bearer " + Key, HttpStatusCode.OK)]
    [InlineData("x-api-key", Key, HttpStatusCode.OK)]
    [InlineData("api-key", Key, HttpStatusCode.OK)]
    [InlineData("Authorization", "Bearer tg-client-key", HttpStatusCode.Unauthorized)]
    [InlineData("x-api-key", Key + "x", HttpStatusCode.Unauthorized)]
    [InlineData(null, null, HttpStatusCode.Unauthorized)]
    public async Task Post_WithRequiredApiKey_AcceptsOnlyTheKey(string? header, string? value, HttpStatusCode expected)
    {
        using var response = await _sim.PostAsync("/v1/chat/completions", Chat(), configure: r =>
        {
            if (header is not null)
            {
                r.Headers.TryAddWithoutValidation(header, value);
            }
        });

        Assert.Equal(expected, response.StatusCode);
        if (expected == HttpStatusCode.Unauthorized)
        {
            var error = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!;
            Assert.Equal("invalid_api_key", (string)error["code"]!);
            Assert.DoesNotContain(Key, error.ToJsonString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Post_AnthropicWithWrongKey_Returns401InAnthropicEnvelope()
    {
        var body = new JsonObject
        {
            ["model"] = "claude-sonnet-4-5",
            ["max_tokens"] = 10,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hi" }),
        };

        using var response = await _sim.PostAsync("/v1/messages", body, configure: r => r.Headers.Add("x-api-key", "wrong"));

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var error = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal("authentication_error", (string)error["error"]!["type"]!);
    }

    [Fact]
    public async Task GetModels_WithKey_ListsModelsInOpenAIShape()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "v1/models");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Key);

        using var response = await _sim.Client.SendAsync(request);

        var list = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal("list", (string)list["object"]!);
        Assert.Contains(list["data"]!.AsArray(), m => (string)m!["id"]! == "gpt-4o" && (string)m["object"]! == "model");
    }

    [Fact]
    public async Task Recorder_KeepsHeadersBodyAndPath_AndFindsByHeader()
    {
        _sim.Recorder.Clear();
        var requestId = Guid.NewGuid().ToString("N");

        using var response = await _sim.PostAsync("/v1/chat/completions?trace=1", Chat(), configure: r =>
        {
            r.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Key);
            r.Headers.Add("x-tokengateway-request-id", requestId);
        });

        var recorded = _sim.Recorder.FindByHeader("x-tokengateway-request-id", requestId);
        Assert.NotNull(recorded);
        Assert.Equal("POST", recorded.Method);
        Assert.Equal("/v1/chat/completions?trace=1", recorded.PathAndQuery);
        Assert.Equal("Bearer " + Key, recorded.GetHeader("authorization"));
        Assert.Equal("gpt-4o-mini", (string)JsonNode.Parse(recorded.BodyText)!["model"]!);
        Assert.Equal(Chat().ToJsonString(), recorded.BodyText);
        Assert.Null(_sim.Recorder.FindByHeader("x-tokengateway-request-id", "other"));
    }

    [Fact]
    public async Task Recorder_KeepsOnlyTheLastRecordLimitRequests()
    {
        _sim.Recorder.Clear();
        for (var i = 0; i < 6; i++)
        {
            using var response = await _sim.PostAsync("/v1/chat/completions", Chat(), configure: r => r.Headers.Add("x-n", i.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }

        var snapshot = _sim.Recorder.Snapshot();
        Assert.Equal(4, snapshot.Count);
        Assert.Equal(["2", "3", "4", "5"], snapshot.Select(r => r.GetHeader("x-n")));
        Assert.Equal(6, _sim.Recorder.Count);
        Assert.True(snapshot.Zip(snapshot.Skip(1)).All(p => p.First.Sequence < p.Second.Sequence));

        _sim.Recorder.Clear();
        Assert.Empty(_sim.Recorder.Snapshot());
    }
}
