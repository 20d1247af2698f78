using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests.Security;

/// <summary>
/// Issue #12 item 1: no key, no memory. Admin endpoints authenticate from the headers before any body byte is read;
/// every endpoint has a 1 MiB default cap; the dashboard login form is capped.
/// </summary>
public sealed class RequestBodyLimitTests(GatewayFixture fixture) : IClassFixture<GatewayFixture>
{
    private GatewayServer Server => fixture.Server;

    [Theory]
    [InlineData(512 * 1024)]          // under the default cap: refused before the body is read anyway
    [InlineData(300L * 1024 * 1024)]  // the 300 MB body of the issue
    public async Task AdminPost_WithoutKey_401BeforeTheBodyIsSent(long declared)
    {
        // 16 KiB of the declared body is sent, then the client waits: the answer can only come from the headers.
        var response = await RawHttp.SendPartialBodyAsync(Server.Address, "POST", "/admin/teams", declared, 16 * 1024);

        Assert.Equal(401, RawHttp.Status(response));
        Assert.Contains("application/problem+json", response, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task AdminPost_WrongKey_401BeforeTheBodyIsSent()
    {
        var response = await RawHttp.SendPartialBodyAsync(Server.Address, "POST", "/admin/teams", 512 * 1024, 16 * 1024,
            "Authorization: Bearer tga-not-the-admin-key-but-long-enough-0123456789\r\n");

        Assert.Equal(401, RawHttp.Status(response));
    }

    [Fact]
    public async Task AdminPost_AuthenticatedContentLengthOverOneMiB_413WithoutReadingIt()
    {
        var response = await RawHttp.SendPartialBodyAsync(Server.Address, "POST", "/admin/teams", 2 * 1024 * 1024, 16 * 1024,
            $"Authorization: Bearer {GatewayServer.AdminKey}\r\n");

        Assert.Equal(413, RawHttp.Status(response));
        Assert.Contains("\"code\":\"request_too_large\"", response, StringComparison.Ordinal); // ProblemDetails, like every admin error
    }

    [Fact]
    public async Task AdminPost_AuthenticatedChunkedBodyOverOneMiB_413()
    {
        // No Content-Length: the running count stops it once past 1 MiB.
        var response = await RawHttp.SendChunkedAsync(Server.Address, "/admin/teams", 1024 * 1024 + 32 * 1024,
            $"Authorization: Bearer {GatewayServer.AdminKey}\r\n");

        Assert.Equal(413, RawHttp.Status(response));
        Assert.Contains("\"code\":\"request_too_large\"", response, StringComparison.Ordinal);
        var teams = await Server.Admin.GetFromJsonAsync<JsonElement>("/admin/teams?limit=1000");
        Assert.DoesNotContain(teams.GetProperty("data").EnumerateArray(), t => t.GetProperty("name").GetString()!.Length > 1000);
    }

    [Fact]
    public async Task DashboardLogin_FormOverCap_413WithoutReadingIt()
    {
        using var http = new HttpClient { BaseAddress = new Uri(Server.Address) };
        var form = new FormUrlEncodedContent([new("key", new string('k', 64 * 1024))]);

        using var response = await http.PostAsync("/dashboard/login", form);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.False(response.Headers.Contains("Set-Cookie"));
    }

    [Fact]
    public async Task DashboardLogin_HugeDeclaredForm_413BeforeTheBodyIsSent()
    {
        var response = await RawHttp.SendPartialBodyAsync(Server.Address, "POST", "/dashboard/login", 300L * 1024 * 1024, 1024,
            contentType: "application/x-www-form-urlencoded");

        Assert.Equal(413, RawHttp.Status(response));
    }

    [Fact]
    public async Task LlmRoute_BodyOverTheOneMiBDefaultButUnderItsCap_IsServed()
    {
        // 2 MiB of JSON whitespace: over the server-wide default, under Gateway:MaxRequestBodyBytes (8 MiB), which the
        // LLM route raises its own request's limit to. Sent chunked, so only the running count can stop it.
        var json = "{\"model\":\"gpt-4o-mini\"," + new string(' ', 2 * 1024 * 1024) + "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
        using var http = Server.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(json))),
        };
        request.Content.Headers.ContentType = new("application/json");
        request.Headers.TransferEncodingChunked = true;

        using var response = await http.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task LlmRoute_ChunkedBodyOverItsCap_413InTheDialectEnvelope()
    {
        await using var server = await GatewayServer.StartAsync(new Dictionary<string, string?> { ["Gateway:MaxRequestBodyBytes"] = "65536" });
        var json = "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"" + new string('b', 256 * 1024) + "\"}]}";
        using var http = server.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(json))),
        };
        request.Content.Headers.ContentType = new("application/json");
        request.Headers.TransferEncodingChunked = true;

        using var response = await http.SendAsync(request);

        await ErrorHandlingTests.AssertOpenAIErrorAsync(response, HttpStatusCode.RequestEntityTooLarge, "request_too_large");
    }
}
