using System.ClientModel;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests;

/// <summary>Every error case of the foundation issue: status, stable code, and the caller's dialect.</summary>
public sealed class ErrorHandlingTests(GatewayFixture fixture) : IClassFixture<GatewayFixture>
{
    private GatewayServer Server => fixture.Server;

    private static readonly object _chat = new { model = "gpt-4o-mini", messages = new[] { new { role = "user", content = "hi" } } };

    [Fact]
    public async Task MissingKey_Returns401InOpenAIEnvelope()
    {
        using var http = new HttpClient { BaseAddress = new Uri(Server.Address) };

        using var response = await http.PostAsync("/v1/chat/completions", ProxySurfaceTests.Json(_chat));

        await AssertOpenAIErrorAsync(response, HttpStatusCode.Unauthorized, "invalid_api_key");
    }

    [Fact]
    public async Task InvalidKey_SdkRaises401AndBodyNeverEchoesTheKey()
    {
        const string bogus = "tg-thisKeyDoesNotExist0000000000000000000000";
        var client = new ChatClient("gpt-4o-mini", new ApiKeyCredential(bogus), new OpenAIClientOptions { Endpoint = Server.OpenAIEndpoint });

        var ex = await Assert.ThrowsAsync<ClientResultException>(() => client.CompleteChatAsync([new UserChatMessage("hi")]));

        Assert.Equal(401, ex.Status);
        Assert.DoesNotContain(bogus, ex.GetRawResponse()!.Content.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task RevokedKey_Returns401()
    {
        var (teamId, key) = await Server.CreateTeamWithKeyAsync("revoke-team");
        var keys = await Server.Admin.GetFromJsonAsync<JsonElement>($"/admin/teams/{teamId}/keys");
        var keyId = keys.GetProperty("data")[0].GetProperty("id").GetString();
        using var http = Server.CreateClient(key);
        (await http.PostAsync("/v1/chat/completions", ProxySurfaceTests.Json(_chat))).EnsureSuccessStatusCode();

        (await Server.Admin.DeleteAsync($"/admin/keys/{keyId}")).EnsureSuccessStatusCode();
        using var response = await http.PostAsync("/v1/chat/completions", ProxySurfaceTests.Json(_chat));

        await AssertOpenAIErrorAsync(response, HttpStatusCode.Unauthorized, "invalid_api_key");
    }

    [Fact]
    public async Task ExpiredKey_Returns401()
    {
        var (teamId, _) = await Server.CreateTeamWithKeyAsync("expiry-team");
        var created = await Server.Admin.PostAsJsonAsync($"/admin/teams/{teamId}/keys", new { name = "short", expiresAt = DateTimeOffset.UtcNow.AddSeconds(1) });
        var key = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString();
        await Task.Delay(1500);
        using var http = Server.CreateClient(key);

        using var response = await http.PostAsync("/v1/chat/completions", ProxySurfaceTests.Json(_chat));

        await AssertOpenAIErrorAsync(response, HttpStatusCode.Unauthorized, "invalid_api_key");
    }

    [Fact]
    public async Task UnknownModel_Returns404ModelNotFound()
    {
        using var http = Server.CreateClient();

        using var response = await http.PostAsync("/v1/chat/completions", ProxySurfaceTests.Json(new { model = "gpt-99-ultra", messages = new[] { new { role = "user", content = "x" } } }));

        var error = await AssertOpenAIErrorAsync(response, HttpStatusCode.NotFound, "model_not_found");
        Assert.Equal("model", error.GetProperty("param").GetString());
    }

    [Fact]
    public async Task UnknownHugeModel_LedgerStoresABoundedModelAndTheErrorEchoesLittle()
    {
        // A 200 KB model name on model_not_found used to be copied into the journal, usage_events and the rollup keys.
        var (teamId, key) = await Server.CreateTeamWithKeyAsync("huge-model-team");
        using var http = Server.CreateClient(key);
        var model = "x-" + new string('q', 200_000);

        using var response = await http.PostAsync("/v1/chat/completions", ProxySurfaceTests.Json(new { model, messages = new[] { new { role = "user", content = "x" } } }));

        var error = await AssertOpenAIErrorAsync(response, HttpStatusCode.NotFound, "model_not_found");
        Assert.True(error.GetProperty("message").GetString()!.Length < 400);
        var requestId = response.Headers.GetValues("x-tokengateway-request-id").Single();
        var usageEvent = await Server.WaitForEventAsync(requestId);
        Assert.Equal("rejected", usageEvent.GetProperty("status").GetString());
        Assert.Equal(model[..128], usageEvent.GetProperty("model").GetString());

        var byModel = await Server.UsageAsync($"teamId={teamId}&groupBy=model");
        var group = Assert.Single(byModel.GetProperty("groups").EnumerateArray());
        Assert.Equal(128, group.GetProperty("key").GetString()!.Length);
    }

    [Theory]
    [InlineData("{\"model\":\"gpt-4o\",\"messages\":[", null)]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "model")]
    [InlineData("{\"model\":\"gpt-4o\"}", "messages")]
    [InlineData("[1,2,3]", null)]
    public async Task MalformedBody_Returns400InvalidRequestNamingTheField(string body, string? param)
    {
        using var http = Server.CreateClient();

        using var response = await http.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));

        var error = await AssertOpenAIErrorAsync(response, HttpStatusCode.BadRequest, "invalid_request");
        if (param is not null)
        {
            Assert.Equal(param, error.GetProperty("param").GetString());
        }
    }

    [Theory]
    [InlineData("{\"model\":\"gpt-4o-mini\",\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}")]
    [InlineData("{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"content\":\"y\"}]}")]
    [InlineData("{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"json_object\",\"type\":\"text\"}}")]
    public async Task DuplicateJsonKeys_Returns400InvalidRequest(string body)
    {
        using var http = Server.CreateClient();

        using var response = await http.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));

        var error = await AssertOpenAIErrorAsync(response, HttpStatusCode.BadRequest, "invalid_request");
        Assert.Contains("Duplicate", error.GetProperty("message").GetString(), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task DuplicateJsonKeys_InAdminPolicy_Return400NotA500()
    {
        using var policy = await Server.Admin.PutAsync($"/admin/teams/{Server.TeamId}/policy",
            new StringContent("{\"budget\":{\"usd\":1000,\"usd\":0.001,\"period\":\"day\"}}", Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, policy.StatusCode);
        Assert.Contains("repeats a property name", await policy.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task DuplicateJsonKeys_OnAnthropicRoute_Returns400InAnthropicEnvelope()
    {
        using var http = new HttpClient { BaseAddress = new Uri(Server.Address) };
        http.DefaultRequestHeaders.Add("x-api-key", Server.VirtualKey);
        const string body = "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":10,\"max_tokens\":20,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";

        using var response = await http.PostAsync("/v1/messages", new StringContent(body, Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var json = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("error", json.GetProperty("type").GetString());
        Assert.Equal("invalid_request_error", json.GetProperty("error").GetProperty("type").GetString());
    }

    [Fact]
    public async Task WrongContentType_Returns400()
    {
        using var http = Server.CreateClient();

        using var response = await http.PostAsync("/v1/chat/completions", new StringContent(JsonSerializer.Serialize(_chat), Encoding.UTF8, "text/plain"));

        await AssertOpenAIErrorAsync(response, HttpStatusCode.BadRequest, "invalid_request");
    }

    [Fact]
    public async Task AnthropicRoute_ErrorsUseAnthropicEnvelope()
    {
        using var http = new HttpClient { BaseAddress = new Uri(Server.Address) };
        http.DefaultRequestHeaders.Add("x-api-key", "tg-wrong");

        using var response = await http.PostAsync("/v1/messages", ProxySurfaceTests.Json(new { model = "claude-sonnet-4-5", max_tokens = 10, messages = new[] { new { role = "user", content = "x" } } }));

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("error", body.GetProperty("type").GetString());
        Assert.Equal("authentication_error", body.GetProperty("error").GetProperty("type").GetString());
    }

    [Fact]
    public async Task UpstreamErrorStatus_PassesThroughUnchanged()
    {
        using var http = Server.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = ProxySurfaceTests.Json(_chat) };
        request.Headers.Add("x-simulator-fault", "status=429");

        using var response = await http.SendAsync(request);

        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        Assert.NotNull(response.Headers.RetryAfter);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(body.TryGetProperty("error", out _));
    }

    [Fact]
    public async Task AdminApi_WithoutAdminKey_Returns401ProblemDetails()
    {
        using var http = Server.CreateClient(); // a team key is not an admin key

        using var response = await http.PostAsJsonAsync("/admin/teams", new { name = "nope" });

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("invalid_admin_key", problem.GetProperty("code").GetString());
    }

    [Fact]
    public async Task AdminApi_InvalidTeam_Returns400ProblemDetails()
    {
        using var response = await Server.Admin.PostAsJsonAsync("/admin/teams", new { name = "" });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("invalid_request", problem.GetProperty("code").GetString());
    }

    internal static async Task<JsonElement> AssertOpenAIErrorAsync(HttpResponseMessage response, HttpStatusCode status, string code)
    {
        Assert.Equal(status, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        var error = body.GetProperty("error");
        Assert.Equal(code, error.GetProperty("code").GetString());
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
        return error;
    }
}
