using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests.Security;

/// <summary>
/// Issue #12 item 3: failed admin-key attempts (admin API and dashboard login) back off exponentially per client
/// address — 4 free failures, then 1 s, 2 s, 4 s … — with 429 and <c>Retry-After</c>; the clock is a FakeTimeProvider.
/// </summary>
public sealed class AdminThrottleTests
{
    private const string WrongKey = "tga-wrong-admin-key-0123456789abcdefghij";

    [Fact]
    public async Task AdminApi_WrongKeys_BackOffExponentially_AndBlockEvenTheRightKeyUntilRetryAfter()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await GatewayServer.StartAsync(services: s => s.AddSingleton<TimeProvider>(clock));
        using var wrong = Client(server.Address, WrongKey);

        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await wrong.GetAsync("/admin/teams")).StatusCode); // the 5th starts a 1 s block
        }

        await AssertBlockedAsync(await wrong.GetAsync("/admin/teams"), 1);
        await AssertBlockedAsync(await server.Admin.GetAsync("/admin/teams"), 1); // even the right key: no guess is checked

        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(HttpStatusCode.Unauthorized, (await wrong.GetAsync("/admin/teams")).StatusCode); // 6th: 2 s
        await AssertBlockedAsync(await wrong.GetAsync("/admin/teams"), 2);
        clock.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(HttpStatusCode.Unauthorized, (await wrong.GetAsync("/admin/teams")).StatusCode); // 7th: 4 s
        await AssertBlockedAsync(await server.Admin.GetAsync("/admin/teams"), 4);

        clock.Advance(TimeSpan.FromSeconds(4));
        Assert.Equal(HttpStatusCode.OK, (await server.Admin.GetAsync("/admin/teams")).StatusCode); // success clears the address
        Assert.Equal(HttpStatusCode.Unauthorized, (await wrong.GetAsync("/admin/teams")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await server.Admin.GetAsync("/admin/teams")).StatusCode);
    }

    [Fact]
    public async Task MissingKey_IsNotAGuess_AndNeverThrottled()
    {
        await using var server = await GatewayServer.StartAsync();
        using var anonymous = new HttpClient { BaseAddress = new Uri(server.Address) };

        for (var i = 0; i < 12; i++)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/admin/teams")).StatusCode);
        }

        Assert.Equal(HttpStatusCode.OK, (await server.Admin.GetAsync("/admin/teams")).StatusCode);
    }

    [Fact]
    public async Task DashboardLogin_WrongKeys_429WithRetryAfter_SharedWithTheAdminApi()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await GatewayServer.StartAsync(services: s => s.AddSingleton<TimeProvider>(clock));
        using var browser = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = new Uri(server.Address) };
        Task<HttpResponseMessage> Login(string key) => browser.PostAsync("/dashboard/login", new FormUrlEncodedContent([new("key", key)]));

        for (var i = 0; i < 4; i++)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await Login(WrongKey)).StatusCode);
        }

        using var fifth = await Login(WrongKey);
        Assert.Equal(HttpStatusCode.TooManyRequests, fifth.StatusCode); // the failure that starts the block says so
        Assert.Equal(TimeSpan.FromSeconds(1), fifth.Headers.RetryAfter?.Delta);
        using var right = await Login(GatewayServer.AdminKey);
        Assert.Equal(HttpStatusCode.TooManyRequests, right.StatusCode);
        Assert.False(right.Headers.Contains("Set-Cookie"));
        await AssertBlockedAsync(await server.Admin.GetAsync("/admin/teams"), 1); // same address, same back-off

        clock.Advance(TimeSpan.FromSeconds(1));
        using var after = await Login(GatewayServer.AdminKey);
        Assert.Equal(HttpStatusCode.Redirect, after.StatusCode);
        Assert.True(after.Headers.Contains("Set-Cookie"));
    }

    [Fact]
    public async Task Throttle_IsPerClientAddress()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await GatewayServer.StartAsync(services: s => s.AddSingleton<TimeProvider>(clock));
        using var attacker = Client(server.Address, WrongKey, IPAddress.Parse("127.0.0.2"));
        using var admin = Client(server.Address, GatewayServer.AdminKey, IPAddress.Parse("127.0.0.3"));

        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await attacker.GetAsync("/admin/teams")).StatusCode);
        }

        await AssertBlockedAsync(await attacker.GetAsync("/admin/teams"), 1);
        Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync("/admin/teams")).StatusCode);
    }

    private static async Task AssertBlockedAsync(HttpResponseMessage response, int retryAfterSeconds)
    {
        using (response)
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(retryAfterSeconds), response.Headers.RetryAfter?.Delta);
            Assert.Contains("too_many_attempts", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
    }

    private static HttpClient Client(string address, string key, IPAddress? source = null)
    {
        var handler = new SocketsHttpHandler();
        if (source is not null)
        {
            // Loopback is a /8 on Linux: binding the client socket gives the gateway another client address.
            handler.ConnectCallback = async (context, ct) =>
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
                socket.Bind(new IPEndPoint(source, 0));
                await socket.ConnectAsync(context.DnsEndPoint, ct);
                return new NetworkStream(socket, ownsSocket: true);
            };
        }

        var client = new HttpClient(handler) { BaseAddress = new Uri(address) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }
}
