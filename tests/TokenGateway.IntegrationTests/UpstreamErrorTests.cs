using System.ClientModel;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenAI;
using OpenAI.Chat;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests;

/// <summary>
/// What a client sees when the provider fails (issue #12 item 10): the gateway's own key refused → 502
/// <c>upstream_auth_failed</c>; an HTML error page → the dialect's envelope with <c>upstream_error</c>; a provider's JSON
/// error → its status and body unchanged; a redirect → never followed.
/// </summary>
public sealed class UpstreamErrorTests(GatewayFixture fixture) : IClassFixture<GatewayFixture>
{
    private GatewayServer Server => fixture.Server;

    private static object Chat(string text = "hi") => new { model = "gpt-4o-mini", messages = new[] { new { role = "user", content = text } } };

    private static object Messages() => new { model = "claude-sonnet-4-5", max_tokens = 20, messages = new[] { new { role = "user", content = "hi" } } };

    [Fact]
    public async Task ProviderRefusesGatewayKey_SdkSees502UpstreamAuthFailedAndNoKey()
    {
        const string wrongKeyEnv = "TG_IT_WRONG_PROVIDER_KEY";
        const string wrongKey = "sk-wrong-canary-4b1d0e9f77";
        Environment.SetEnvironmentVariable(wrongKeyEnv, wrongKey);
        await using var server = await GatewayServer.StartAsync(new Dictionary<string, string?> { ["Providers:openai:ApiKeyEnv"] = wrongKeyEnv });
        var client = new ChatClient("gpt-4o-mini", new ApiKeyCredential(server.VirtualKey), new OpenAIClientOptions { Endpoint = server.OpenAIEndpoint });

        var ex = await Assert.ThrowsAsync<ClientResultException>(() => client.CompleteChatAsync([new UserChatMessage("hi")]));

        Assert.Equal(502, ex.Status); // not 401: the caller's key is fine
        var raw = ex.GetRawResponse()!;
        var body = raw.Content.ToString();
        Assert.Equal("upstream_auth_failed", JsonDocument.Parse(body).RootElement.GetProperty("error").GetProperty("code").GetString());
        Assert.DoesNotContain(wrongKey, body, StringComparison.Ordinal);
        var requestId = raw.Headers.TryGetValue("x-tokengateway-request-id", out var id) ? id! : throw new InvalidOperationException();
        var e = await server.WaitForEventAsync(requestId);
        Assert.Equal("upstream_error", e.GetProperty("status").GetString());
        Assert.Equal("upstream_auth_failed", e.GetProperty("errorCode").GetString());
        Assert.Equal(0m, e.GetProperty("costUsd").GetDecimal());
    }

    [Fact]
    public async Task Provider403OnMessages_AnthropicEnvelopeWithUpstreamAuthFailed()
    {
        using var http = new HttpClient { BaseAddress = new Uri(Server.Address) };
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/messages") { Content = ProxySurfaceTests.Json(Messages()) };
        request.Headers.Add("x-api-key", Server.VirtualKey);
        request.Headers.Add("x-simulator-fault", "status=403");

        using var response = await http.SendAsync(request);

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("error", body.GetProperty("type").GetString());
        Assert.Equal("upstream_auth_failed", body.GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task HtmlErrorPage_BecomesOpenAIEnvelopeWithUpstreamErrorAndProviderStatus()
    {
        using var http = Server.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = ProxySurfaceTests.Json(Chat()) };
        request.Headers.Add("x-simulator-fault", "status=503,html-error");

        using var response = await http.SendAsync(request);

        var error = await ErrorHandlingTests.AssertOpenAIErrorAsync(response, HttpStatusCode.ServiceUnavailable, "upstream_error");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.DoesNotContain("<html", error.GetProperty("message").GetString(), StringComparison.OrdinalIgnoreCase);
        var e = await Server.WaitForEventAsync(response.Headers.GetValues("x-tokengateway-request-id").Single());
        Assert.Equal("upstream_error", e.GetProperty("status").GetString());
    }

    [Fact]
    public async Task HtmlErrorPage_OnMessages_BecomesAnthropicEnvelope()
    {
        using var http = new HttpClient { BaseAddress = new Uri(Server.Address) };
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/messages") { Content = ProxySurfaceTests.Json(Messages()) };
        request.Headers.Add("x-api-key", Server.VirtualKey);
        request.Headers.Add("x-simulator-fault", "status=502,html-error");

        using var response = await http.SendAsync(request);

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("api_error", body.GetProperty("error").GetProperty("type").GetString());
        Assert.Equal("upstream_error", body.GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task JsonProviderError_KeepsStatusAndBody()
    {
        using var http = Server.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = ProxySurfaceTests.Json(Chat()) };
        request.Headers.Add("x-simulator-fault", "status=400");

        using var response = await http.SendAsync(request);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");
        Assert.Equal("Simulated upstream error (status 400).", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task ProviderRedirect_NeverFollowedOnProxyOrRepairPath()
    {
        await using var redirector = await Redirector.StartAsync(Server.Simulator.Address);
        await using var server = await GatewayServer.StartAsync(new Dictionary<string, string?> { ["Providers:openai:Destinations:0"] = redirector.Address });
        using var http = server.CreateClient();

        // Proxy path: the primary call is redirected.
        using var primary = await http.PostAsync("/v1/chat/completions", ProxySurfaceTests.Json(Chat("redirect-primary")));

        await ErrorHandlingTests.AssertOpenAIErrorAsync(primary, HttpStatusCode.BadGateway, "upstream_error");

        // Repair path: the primary answer breaks the schema, the repair call is redirected.
        var schema = JsonDocument.Parse("""{"type":"object","properties":{"name":{"type":"string"}},"required":["name"],"additionalProperties":false}""").RootElement;
        using var structured = await http.PostAsync("/v1/chat/completions", ProxySurfaceTests.Json(new
        {
            model = "gpt-4o-mini",
            messages = new[] { new { role = "user", content = "name someone" } },
            response_format = new { type = "json_schema", json_schema = new { name = "person", strict = true, schema } },
        }));

        await ErrorHandlingTests.AssertOpenAIErrorAsync(structured, HttpStatusCode.BadGateway, "schema_validation_failed");
        var requestId = structured.Headers.GetValues("x-tokengateway-request-id").Single();
        var repair = await server.WaitForEventAsync(requestId + "_repair1");
        Assert.Equal(307, repair.GetProperty("httpStatus").GetInt32());
        Assert.Equal("upstream_error", repair.GetProperty("status").GetString());
        Assert.Equal(3, redirector.Requests); // redirected primary, structured primary, its repair
        Assert.Equal(1, redirector.Redirects);
        Assert.DoesNotContain(Server.Simulator.Recorder.Snapshot(), r => r.GetHeader("Authorization") == "Bearer " + GatewayServer.ProviderKey
            && (r.BodyText.Contains("redirect-primary", StringComparison.Ordinal) || r.GetHeader("x-tokengateway-request-id")?.StartsWith(requestId, StringComparison.Ordinal) == true));
    }

    [Fact]
    public async Task RepairCalls_UseTheClustersLoadBalancingPolicy_NotARandomDestination()
    {
        // Two destinations, the second unreachable; FirstAlphabetical always picks the first. A repair client that picked
        // its own destination at random would fail about half of these repairs.
        using var closed = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        closed.Start();
        var closedPort = ((IPEndPoint)closed.LocalEndpoint).Port;
        closed.Stop();
        await using var server = await GatewayServer.StartAsync(new Dictionary<string, string?>
        {
            ["Providers:openai:Destinations:1"] = $"http://127.0.0.1:{closedPort}/",
            ["Providers:openai:LoadBalancingPolicy"] = "FirstAlphabetical",
        });
        using var http = server.CreateClient();
        var schema = JsonDocument.Parse("""{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"],"additionalProperties":false}""").RootElement;

        for (var i = 0; i < 8; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
            {
                Content = ProxySurfaceTests.Json(new
                {
                    model = "gpt-4o-mini",
                    messages = new[] { new { role = "user", content = $"Describe person {i}." } },
                    response_format = new { type = "json_schema", json_schema = new { name = "person", strict = true, schema } },
                }),
            };
            request.Headers.Add("x-simulator-fault", "invalid-json");

            using var response = await http.SendAsync(request);

            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("1", response.Headers.GetValues("x-tokengateway-schema-repaired").Single());
        }
    }

    /// <summary>A provider stand-in that answers repairs and marked requests with 307 to <c>target</c>, others with an invalid structured answer.</summary>
    private sealed class Redirector : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private int _requests;
        private int _redirects;

        private Redirector(WebApplication app) => _app = app;

        public string Address { get; private set; } = "";

        public int Requests => Volatile.Read(ref _requests);

        public int Redirects => Volatile.Read(ref _redirects);

        public static async Task<Redirector> StartAsync(string target)
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            builder.Logging.ClearProviders();
            var app = builder.Build();
            var redirector = new Redirector(app);
            app.MapPost("/v1/chat/completions", async (HttpContext context) =>
            {
                Interlocked.Increment(ref redirector._requests);
                using var reader = new StreamReader(context.Request.Body);
                var body = await reader.ReadToEndAsync();
                var id = context.Request.Headers["x-tokengateway-request-id"].ToString();
                if (id.EndsWith("_repair1", StringComparison.Ordinal))
                {
                    Interlocked.Increment(ref redirector._redirects);
                    return Results.Redirect(target + "v1/chat/completions", permanent: false, preserveMethod: true);
                }

                if (body.Contains("redirect-primary", StringComparison.Ordinal))
                {
                    return Results.Redirect(target + "v1/chat/completions", permanent: false, preserveMethod: true);
                }

                return Results.Json(new
                {
                    id = "chatcmpl-redirector",
                    @object = "chat.completion",
                    created = 1,
                    model = "gpt-4o-mini",
                    choices = new[] { new { index = 0, message = new { role = "assistant", content = "{\"nom\":1}" }, finish_reason = "stop" } },
                    usage = new { prompt_tokens = 10, completion_tokens = 5, total_tokens = 15 },
                });
            });
            await app.StartAsync();
            redirector.Address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First().TrimEnd('/') + "/";
            return redirector;
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }
}
