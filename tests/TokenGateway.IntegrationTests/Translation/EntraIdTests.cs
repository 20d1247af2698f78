using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Azure.Core;
using Azure.Identity;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using TokenGateway.IntegrationTests.Infrastructure;
using TokenGateway.Providers;

namespace TokenGateway.IntegrationTests.Translation;

/// <summary>
/// Azure OpenAI with Microsoft Entra ID (issue #16): the token of a <see cref="TokenCredential"/> is sent as
/// <c>Authorization: Bearer</c> instead of an api-key, cached and refreshed before it expires. The real credentials
/// (DefaultAzureCredential, managed identity, workload identity) need Entra ID and an Azure resource, which this machine
/// cannot reach: a fake credential is injected through DI, exactly where a host would register its own.
/// </summary>
[Collection(nameof(SerialCollection))]
public sealed class EntraIdTests
{
    private static Dictionary<string, string?> EntraIdSettings() => new()
    {
        ["Providers:azure:Auth"] = "EntraId",
        ["Providers:azure:ApiKeyEnv"] = null, // no key: the token is the only credential
    };

    [Fact]
    public async Task AzureProviderWithEntraId_SendsCachedBearerTokenAndNoApiKey()
    {
        // The simulator requires the provider key as its credential, so the fake token carries that value.
        var credential = new FakeCredential(_ => GatewayServer.ProviderKey, TimeSpan.FromHours(1));
        await using var server = await GatewayServer.StartAsync(EntraIdSettings(), s => s.AddSingleton<TokenCredential>(credential));
        using var client = server.CreateClient();

        for (var i = 0; i < 3; i++)
        {
            using var response = await client.PostAsync("/v1/chat/completions", Json($$"""{"model":"azure-gpt-4o","messages":[{"role":"user","content":"entra {{i}}"}]}"""));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        var calls = server.Simulator.Recorder.Snapshot().Where(r => r.BodyText.Contains("entra ", StringComparison.Ordinal)).ToList();
        Assert.Equal(3, calls.Count);
        Assert.All(calls, r =>
        {
            Assert.StartsWith("/openai/deployments/azure-gpt-4o/chat/completions", r.PathAndQuery, StringComparison.Ordinal);
            Assert.Equal("Bearer " + GatewayServer.ProviderKey, r.GetHeader("authorization"));
            Assert.Null(r.GetHeader("api-key"));
        });
        Assert.Equal(1, credential.Calls); // cached: one token for every request
        Assert.Equal([EntraIdTokenSource.DefaultScope], credential.Scopes);
    }

    [Fact]
    public async Task AnthropicClientOnEntraIdAzureModel_TranslatedAndAuthenticatedWithTheToken()
    {
        var credential = new FakeCredential(_ => GatewayServer.ProviderKey, TimeSpan.FromHours(1));
        await using var server = await GatewayServer.StartAsync(EntraIdSettings(), s => s.AddSingleton<TokenCredential>(credential));
        using var client = new HttpClient { BaseAddress = new Uri(server.Address) };
        client.DefaultRequestHeaders.Add("x-api-key", server.VirtualKey);

        using var response = await client.PostAsync("/v1/messages", Json("""{"model":"azure-gpt-4o","max_tokens":20,"messages":[{"role":"user","content":"entra via messages"}]}"""));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("message", (string)JsonNode.Parse(await response.Content.ReadAsStringAsync())!["type"]!);
        var upstream = server.Simulator.Recorder.Snapshot().Last(r => r.BodyText.Contains("entra via messages", StringComparison.Ordinal));
        Assert.Equal("Bearer " + GatewayServer.ProviderKey, upstream.GetHeader("authorization"));
    }

    [Fact]
    public async Task EntraIdUnavailable_502UpstreamAuthFailedInTheCallersEnvelope()
    {
        var credential = new FakeCredential(_ => throw new CredentialUnavailableException("no managed identity endpoint"), TimeSpan.FromHours(1));
        await using var server = await GatewayServer.StartAsync(EntraIdSettings(), s => s.AddSingleton<TokenCredential>(credential));
        using var client = server.CreateClient();

        using var response = await client.PostAsync("/v1/chat/completions", Json("""{"model":"azure-gpt-4o","messages":[{"role":"user","content":"no token"}]}"""));

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        var error = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!;
        Assert.Equal("upstream_auth_failed", (string)error["code"]!);
        Assert.DoesNotContain(server.Simulator.Recorder.Snapshot(), r => r.BodyText.Contains("no token", StringComparison.Ordinal));
    }

    [Fact]
    public async Task EntraIdWithApiKeyEnv_RefusedAtStartup()
    {
        var settings = EntraIdSettings();
        settings["Providers:azure:ApiKeyEnv"] = GatewayServer.ProviderKeyEnv;

        var ex = await Assert.ThrowsAnyAsync<Exception>(() => GatewayServer.StartAsync(settings));

        Assert.Contains("Auth EntraId sends no key", ex.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task TokenSource_RefreshesInTheBackgroundBeforeExpiryAndAwaitsOnlyWhenExpired()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-12-01T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var credential = new FakeCredential(n => $"token-{n}", TimeSpan.FromHours(1), time);
        var sut = new EntraIdTokenSource("azure", credential, EntraIdTokenSource.DefaultScope, time, NullLogger.Instance);

        Assert.Equal("Bearer token-1", await sut.GetAuthorizationAsync(CancellationToken.None));
        time.Advance(TimeSpan.FromMinutes(54));
        var cached = sut.GetAuthorizationAsync(CancellationToken.None);
        Assert.True(cached.IsCompletedSuccessfully); // inside the token's life: no wait
        Assert.Equal("Bearer token-1", await cached);
        Assert.Equal(1, credential.Calls);

        time.Advance(TimeSpan.FromMinutes(2)); // 56 min: within five minutes of expiry
        var during = sut.GetAuthorizationAsync(CancellationToken.None);
        Assert.True(during.IsCompletedSuccessfully); // still the valid token while the refresh runs
        Assert.Equal("Bearer token-1", await during);
        await credential.WaitForCallsAsync(2);
        await WaitUntilAsync(async () => await sut.GetAuthorizationAsync(CancellationToken.None) == "Bearer token-2");

        time.Advance(TimeSpan.FromHours(2)); // token-2 expired too: the next request awaits a fresh one
        Assert.Equal("Bearer token-3", await sut.GetAuthorizationAsync(CancellationToken.None));
        Assert.Equal(3, credential.Calls);
    }

    [Fact]
    public async Task TokenSource_ConcurrentFirstRequests_ShareOneFetch()
    {
        var gate = new TaskCompletionSource();
        var credential = new FakeCredential(n => $"token-{n}", TimeSpan.FromHours(1), gate: gate.Task);
        var sut = new EntraIdTokenSource("azure", credential, EntraIdTokenSource.DefaultScope, TimeProvider.System, NullLogger.Instance);

        var waiting = Enumerable.Range(0, 8).Select(_ => sut.GetAuthorizationAsync(CancellationToken.None).AsTask()).ToArray();
        gate.SetResult();
        var values = await Task.WhenAll(waiting);

        Assert.All(values, v => Assert.Equal("Bearer token-1", v));
        Assert.Equal(1, credential.Calls);
    }

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met in time");
            await Task.Delay(10);
        }
    }

    /// <summary>A token credential that counts its calls; tokens live <c>lifetime</c> from the (fake) clock.</summary>
    private sealed class FakeCredential(Func<int, string> token, TimeSpan lifetime, TimeProvider? time = null, Task? gate = null) : TokenCredential
    {
        private int _calls;

        public int Calls => Volatile.Read(ref _calls);

        public string[] Scopes { get; private set; } = [];

        public override AccessToken GetToken(TokenRequestContext requestContext, CancellationToken cancellationToken) =>
            GetTokenAsync(requestContext, cancellationToken).AsTask().GetAwaiter().GetResult();

        public override async ValueTask<AccessToken> GetTokenAsync(TokenRequestContext requestContext, CancellationToken cancellationToken)
        {
            if (gate is not null)
            {
                await gate;
            }

            var n = Interlocked.Increment(ref _calls);
            Scopes = requestContext.Scopes;
            return new AccessToken(token(n), (time ?? TimeProvider.System).GetUtcNow() + lifetime);
        }

        public async Task WaitForCallsAsync(int calls)
        {
            var deadline = DateTime.UtcNow.AddSeconds(5);
            while (Calls < calls)
            {
                Assert.True(DateTime.UtcNow < deadline, $"{Calls} of {calls} token calls");
                await Task.Delay(10);
            }
        }
    }
}
