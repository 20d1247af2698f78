using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests.Security;

/// <summary>
/// Issue #12 item 2: <c>/metrics</c> carries per-team cost and budgets. On the API port it needs the admin key; with
/// <c>Management:Urls</c> it moves to the management port (with <c>/healthz</c>, <c>/readyz</c>), without auth.
/// </summary>
public sealed class MetricsAccessTests
{
    [Fact]
    public async Task ApiPort_Metrics_RequiresTheAdminKey()
    {
        await using var server = await GatewayServer.StartAsync();
        using var anonymous = new HttpClient { BaseAddress = new Uri(server.Address) };
        using var teamKey = server.CreateClient();
        using var wrongKey = server.CreateClient("tga-wrong-admin-key-0123456789abcdefghij");

        using var none = await anonymous.GetAsync("/metrics");
        using var team = await teamKey.GetAsync("/metrics");
        using var wrong = await wrongKey.GetAsync("/metrics");
        using var admin = await server.Admin.GetAsync("/metrics");

        Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, team.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        Assert.Equal(HttpStatusCode.OK, admin.StatusCode);
        Assert.Contains("# TYPE", await admin.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        // Liveness and readiness stay anonymous on the API port.
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/healthz")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/readyz")).StatusCode);
    }

    [Fact]
    public async Task ManagementPort_ServesMetricsHealthAndReadinessWithoutAuth_AndNothingElse()
    {
        var port = FreePort();
        await using var server = await GatewayServer.StartAsync(new Dictionary<string, string?> { ["Management:Urls"] = $"http://127.0.0.1:{port}" });
        Assert.NotEqual(port, new Uri(server.Address).Port);
        using var management = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/") };

        using var metrics = await management.GetAsync("/metrics");
        using var health = await management.GetAsync("/healthz");
        using var ready = await management.GetAsync("/readyz");
        management.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", GatewayServer.AdminKey);
        using var admin = await management.GetAsync("/admin/teams");
        using var chat = await management.PostAsync("/v1/chat/completions", ProxySurfaceTests.Json(new { model = "gpt-4o-mini", messages = new[] { new { role = "user", content = "hi" } } }));

        Assert.Equal(HttpStatusCode.OK, metrics.StatusCode);
        Assert.Contains("# TYPE", await metrics.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, admin.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, chat.StatusCode);
    }

    [Fact]
    public async Task ManagementPortSet_ApiPortNoLongerServesMetrics_EvenWithTheAdminKeyOrAForgedHost()
    {
        var port = FreePort();
        await using var server = await GatewayServer.StartAsync(new Dictionary<string, string?> { ["Management:Urls"] = $"http://127.0.0.1:{port}" });
        using var anonymous = new HttpClient { BaseAddress = new Uri(server.Address) };

        using var admin = await server.Admin.GetAsync("/metrics");
        using var forged = new HttpRequestMessage(HttpMethod.Get, "/metrics");
        forged.Headers.Host = $"127.0.0.1:{port}"; // the management port is the connection's, not the Host header's
        using var forgedResponse = await anonymous.SendAsync(forged);

        Assert.Equal(HttpStatusCode.NotFound, admin.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, forgedResponse.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/healthz")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await server.Admin.GetAsync("/admin/teams")).StatusCode);
    }

    internal static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
