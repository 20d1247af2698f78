using System.Net;
using System.Net.Http.Json;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests;

/// <summary>Dashboard sessions: cookie shape, what the cookie unlocks, and self-contained assets.</summary>
public sealed class DashboardTests(GatewayFixture fixture) : IClassFixture<GatewayFixture>
{
    private GatewayServer Server => fixture.Server;

    [Fact]
    public async Task Login_ValidKey_SetsSignedStrictCookieThatReadsButCannotWriteAdminApi()
    {
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = new Uri(Server.Address) };

        using var login = await http.PostAsync("/dashboard/login", new FormUrlEncodedContent([new("key", GatewayServer.AdminKey)]));

        Assert.Equal(HttpStatusCode.Redirect, login.StatusCode);
        var setCookie = Assert.Single(login.Headers.GetValues("Set-Cookie"));
        Assert.StartsWith("__Host-tg_dashboard=", setCookie, StringComparison.Ordinal);
        Assert.Contains("secure", setCookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("httponly", setCookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=strict", setCookie, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(GatewayServer.AdminKey, Uri.UnescapeDataString(setCookie), StringComparison.Ordinal);
        var cookie = setCookie.Split(';')[0];

        using var read = Send(HttpMethod.Get, "/admin/usage", cookie);
        using var readResponse = await http.SendAsync(read);
        using var write = Send(HttpMethod.Post, "/admin/teams", cookie);
        write.Content = JsonContent.Create(new { name = "via-cookie" });
        using var writeResponse = await http.SendAsync(write);
        using var page = await http.SendAsync(Send(HttpMethod.Get, "/dashboard", cookie));

        Assert.Equal(HttpStatusCode.OK, readResponse.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, writeResponse.StatusCode);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("default-src 'none'", page.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("__Host-tg_dashboard=not-a-token")]
    [InlineData("__Host-tg_dashboard=")]
    [InlineData("tg_dashboard=whatever")]
    public async Task AdminApi_InvalidSessionCookie_401(string cookie)
    {
        using var http = new HttpClient(new HttpClientHandler { UseCookies = false }) { BaseAddress = new Uri(Server.Address) };

        using var response = await http.SendAsync(Send(HttpMethod.Get, "/admin/usage", cookie));

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task Login_WrongKey_401WithoutCookie()
    {
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = new Uri(Server.Address) };

        using var login = await http.PostAsync("/dashboard/login", new FormUrlEncodedContent([new("key", "tga-guess")]));

        Assert.Equal(HttpStatusCode.Unauthorized, login.StatusCode);
        Assert.False(login.Headers.Contains("Set-Cookie"));
    }

    [Theory]
    [InlineData("dashboard.js")]
    [InlineData("charts.js")]
    [InlineData("common.js")]
    [InlineData("insights.js")]
    [InlineData("dashboard.css")]
    public async Task Assets_AreServedAndLoadNothingExternal(string asset)
    {
        using var http = new HttpClient { BaseAddress = new Uri(Server.Address) };

        var text = await http.GetStringAsync("/dashboard/assets/" + asset);

        Assert.NotEmpty(text);
        var withoutSvgNamespace = text.Replace("http://www.w3.org/2000/svg", "", StringComparison.Ordinal);
        Assert.DoesNotContain("http://", withoutSvgNamespace, StringComparison.Ordinal);
        Assert.DoesNotContain("https://", withoutSvgNamespace, StringComparison.Ordinal);
        Assert.DoesNotContain("//cdn", withoutSvgNamespace, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RecentAndStages_ReturnLedgerEvents()
    {
        await TrafficGenerator.SendMixAsync(Server, Server.VirtualKey);

        var recent = await Server.Admin.GetFromJsonAsync<System.Text.Json.JsonElement>("/admin/usage/recent?limit=3&teamId=" + Server.TeamId);
        var stages = await Server.Admin.GetFromJsonAsync<System.Text.Json.JsonElement>("/admin/usage/stages");

        Assert.Equal(3, recent.GetProperty("data").GetArrayLength());
        Assert.True(stages.GetProperty("scannedEvents").GetInt64() >= 8);
        Assert.False(stages.GetProperty("truncated").GetBoolean());
    }

    private static HttpRequestMessage Send(HttpMethod method, string path, string cookie)
    {
        var request = new HttpRequestMessage(method, path);
        request.Headers.Add("Cookie", cookie);
        return request;
    }
}
