using System.ClientModel;
using System.ClientModel.Primitives;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests.Resilience;

/// <summary>
/// Issue #13, per-attempt timeouts from configuration, per model and per team: a response-headers timeout is retried
/// like a 504 before the first byte; an idle timeout of a buffered body is retried; an idle timeout after the first
/// byte of a stream ends it like a cut (stream error, abnormal end).
/// </summary>
[Collection(nameof(SerialCollection))]
public sealed class TimeoutTests
{
    private const string Fault = ResilienceTestSettings.Fault;

    private static Dictionary<string, string?> Settings(int maxAttempts = 3) => ResilienceTestSettings.Retries(maxAttempts);

    private static string Scenario() => ResilienceTestSettings.Scenario();

    private static ChatClient Sdk(GatewayServer server, CaptureHandler capture) => new("gpt-4o-mini", new ApiKeyCredential(server.VirtualKey), new OpenAIClientOptions
    {
        Endpoint = server.OpenAIEndpoint,
        RetryPolicy = new ClientRetryPolicy(0),
        NetworkTimeout = TimeSpan.FromSeconds(60),
        Transport = new HttpClientPipelineTransport(new HttpClient(capture)),
    });

    [Theory]
    [InlineData("gateway")]
    [InlineData("model")]
    [InlineData("team")]
    public async Task ResponseHeadersTimeout_IsRetriedLikeA504BeforeTheFirstByte(string level)
    {
        var settings = Settings();
        if (level == "gateway")
        {
            settings["Resilience:Timeouts:ResponseHeaders"] = "00:00:00.5";
        }
        else if (level == "model")
        {
            settings["Models:gpt-4o-mini:Resilience:Timeouts:ResponseHeaders"] = "00:00:00.5";
        }

        await using var server = await GatewayServer.StartAsync(settings);
        if (level == "team")
        {
            (await server.Admin.PutAsJsonAsync($"/admin/teams/{server.TeamId}/policy",
                new { resilience = new { timeouts = new { responseHeaders = "00:00:00.5" } } })).EnsureSuccessStatusCode();
        }

        var capture = new CaptureHandler(Fault, $"scenario={Scenario()},first=1,latency=3s");
        var watch = Stopwatch.StartNew();

        var result = await Sdk(server, capture).CompleteChatAsync([new UserChatMessage("hello")]);

        watch.Stop();
        var raw = result.GetRawResponse();
        Assert.Equal(200, raw.Status);
        Assert.Equal("2", raw.Headers.TryGetValue("x-tokengateway-attempts", out var attempts) ? attempts : null);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(2.5), $"took {watch.Elapsed}: the 3 s first attempt was waited out");
        var first = await server.WaitForEventAsync(capture.RequestId + "_attempt1");
        Assert.Equal("upstream_timeout", first.GetProperty("errorCode").GetString());
        Assert.Equal(0m, first.GetProperty("costUsd").GetDecimal());
    }

    [Fact]
    public async Task ResponseHeadersTimeout_Persistent_SdkSees504UpstreamTimeoutAfterTheConfiguredAttempts()
    {
        var settings = Settings(maxAttempts: 2);
        settings["Models:gpt-4o-mini:Resilience:Timeouts:ResponseHeaders"] = "00:00:00.4";
        await using var server = await GatewayServer.StartAsync(settings);
        var capture = new CaptureHandler(Fault, "latency=3s");

        var ex = await Assert.ThrowsAsync<ClientResultException>(() => Sdk(server, capture).CompleteChatAsync([new UserChatMessage("hello")]));

        Assert.Equal(504, ex.Status);
        var raw = ex.GetRawResponse()!;
        Assert.Equal("2", raw.Headers.TryGetValue("x-tokengateway-attempts", out var attempts) ? attempts : null);
        Assert.Contains("upstream_timeout", raw.Content.ToString(), StringComparison.Ordinal);
        var own = await server.WaitForEventAsync(capture.RequestId!);
        Assert.Equal("upstream_timeout", own.GetProperty("errorCode").GetString());
    }

    [Fact]
    public async Task IdleTimeout_BufferedBodyStalledBeforeTheFirstByte_IsRetried()
    {
        var settings = Settings();
        settings["Resilience:Timeouts:Idle"] = "00:00:00.5";
        await using var server = await GatewayServer.StartAsync(settings);
        var capture = new CaptureHandler(Fault, $"scenario={Scenario()},first=1,stall");

        var result = await Sdk(server, capture).CompleteChatAsync([new UserChatMessage("hello")]);

        Assert.Equal(200, result.GetRawResponse().Status);
        Assert.False(string.IsNullOrEmpty(result.Value.Content[0].Text));
        var first = await server.WaitForEventAsync(capture.RequestId + "_attempt1");
        Assert.Equal("upstream_idle_timeout", first.GetProperty("errorCode").GetString());
        var own = await server.WaitForEventAsync(capture.RequestId!);
        Assert.Equal("ok", own.GetProperty("status").GetString());
    }

    [Fact]
    public async Task IdleTimeout_AfterTheFirstByte_EndsTheStreamLikeACut()
    {
        await using var server = await GatewayServer.StartAsync(Settings());
        (await server.Admin.PutAsJsonAsync($"/admin/teams/{server.TeamId}/policy",
            new { resilience = new { timeouts = new { idle = "00:00:00.5" } } })).EnsureSuccessStatusCode();
        var capture = new CaptureHandler(Fault, "stall-after=3");
        var watch = Stopwatch.StartNew();

        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await foreach (var _ in Sdk(server, capture).CompleteChatStreamingAsync([new UserChatMessage("tell me a story")]))
            {
            }
        });

        watch.Stop();
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"took {watch.Elapsed}");
        var own = await server.WaitForEventAsync(capture.RequestId!);
        Assert.Equal("upstream_error", own.GetProperty("status").GetString());
        Assert.Equal("upstream_idle_timeout", own.GetProperty("errorCode").GetString());
        Assert.True(own.GetProperty("outputTokens").GetInt32() > 0); // billed for what was delivered

        // The raw stream: the error event, then an abnormal end.
        using var http = new HttpClient { BaseAddress = new Uri(server.Address) };
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = JsonContent.Create(new { model = "gpt-4o-mini", stream = true, messages = new[] { new { role = "user", content = "x" } } }),
        };
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", server.VirtualKey);
        request.Headers.Add(Fault, "stall-after=3");
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var body = new StringBuilder();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var failed = await Record.ExceptionAsync(async () =>
        {
            while (await reader.ReadLineAsync() is { } line)
            {
                body.AppendLine(line);
            }
        });
        Assert.NotNull(failed);
        Assert.Contains("\"code\":\"upstream_idle_timeout\"", body.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("[DONE]", body.ToString(), StringComparison.Ordinal);
    }

    /// <summary>Adds the fault header to every request and keeps the gateway's request id of the last response.</summary>
    private sealed class CaptureHandler(string header, string value) : DelegatingHandler(new SocketsHttpHandler())
    {
        public string? RequestId { get; private set; }

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            request.Headers.Remove(header);
            request.Headers.Add(header, value);
            var response = await base.SendAsync(request, cancellationToken);
            if (response.Headers.TryGetValues("x-tokengateway-request-id", out var ids))
            {
                RequestId = ids.First();
            }

            return response;
        }
    }
}
