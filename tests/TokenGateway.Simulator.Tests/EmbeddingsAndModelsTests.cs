using System.Net;
using System.Text.Json.Nodes;

namespace TokenGateway.Simulator.Tests;

public sealed class EmbeddingsAndModelsTests : IAsyncLifetime
{
    private SimulatorHost _sim = null!;

    public async Task InitializeAsync() => _sim = await SimulatorHost.StartAsync(prefix: "/sim");

    public async Task DisposeAsync() => await _sim.DisposeAsync();

    private static float[] Vector(JsonNode item) => item["embedding"]!.AsArray().Select(x => (float)x!).ToArray();

    [Theory]
    [InlineData("text-embedding-3-small", null, 1536)]
    [InlineData("text-embedding-3-large", null, 3072)]
    [InlineData("text-embedding-3-small", 256, 256)]
    public async Task Post_Embeddings_ReturnsUnitVectorsOfRequestedWidth(string model, int? dimensions, int expected)
    {
        var body = new JsonObject { ["model"] = model, ["input"] = new JsonArray("alpha beta", "gamma") };
        if (dimensions is not null)
        {
            body["dimensions"] = dimensions;
        }

        var result = await _sim.PostJsonAsync("/v1/embeddings", body);

        Assert.Equal("list", (string)result["object"]!);
        var data = result["data"]!.AsArray();
        Assert.Equal(2, data.Count);
        Assert.Equal(1, (int)data[1]!["index"]!);
        var v = Vector(data[0]!);
        Assert.Equal(expected, v.Length);
        Assert.Equal(1.0, Math.Sqrt(v.Sum(x => (double)x * x)), 3);
        var tokens = Tokens.Cl100k("alpha beta") + Tokens.Cl100k("gamma");
        Assert.Equal(tokens, (int)result["usage"]!["prompt_tokens"]!);
        Assert.Equal(tokens, (int)result["usage"]!["total_tokens"]!);
    }

    [Fact]
    public async Task Post_Embeddings_DeterministicAndBase64MatchesFloats()
    {
        var body = new JsonObject { ["model"] = "text-embedding-3-small", ["input"] = "same text" };
        var a = await _sim.PostJsonAsync("/v1/embeddings", body);
        var b = await _sim.PostJsonAsync("/v1/embeddings", body);
        body["encoding_format"] = "base64";
        var c = await _sim.PostJsonAsync("/v1/embeddings", body);

        var floats = Vector(a["data"]![0]!);
        Assert.Equal(floats, Vector(b["data"]![0]!));
        var bytes = Convert.FromBase64String((string)c["data"]![0]!["embedding"]!);
        var decoded = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, decoded, 0, bytes.Length);
        Assert.Equal(floats, decoded);
    }

    [Fact]
    public async Task Post_EmbeddingsWithTokenArrays_CountsTokens()
    {
        var body = new JsonObject { ["model"] = "text-embedding-3-small", ["input"] = new JsonArray(new JsonArray(1, 2, 3), new JsonArray(4, 5)) };

        var result = await _sim.PostJsonAsync("/v1/embeddings", body);

        Assert.Equal(5, (int)result["usage"]!["prompt_tokens"]!);
        Assert.Equal(2, result["data"]!.AsArray().Count);
    }

    [Fact]
    public async Task Post_AzureEmbeddings_UsesDeployment()
    {
        var result = await _sim.PostJsonAsync("/openai/deployments/text-embedding-3-large/embeddings?api-version=2024-10-21", new JsonObject { ["input"] = "x" });

        Assert.Equal(3072, Vector(result["data"]![0]!).Length);
    }

    [Fact]
    public async Task Post_EmbeddingsWithoutInput_Returns400()
    {
        using var response = await _sim.PostAsync("/v1/embeddings", new JsonObject { ["model"] = "text-embedding-3-small" });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact]
    public async Task GetModels_WithAnthropicVersion_UsesAnthropicShape()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "v1/models");
        request.Headers.Add("anthropic-version", "2023-06-01");

        using var response = await _sim.Client.SendAsync(request);

        var list = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.False((bool)list["has_more"]!);
        Assert.All(list["data"]!.AsArray(), m => Assert.Equal("model", (string)m!["type"]!));
    }

    [Fact]
    public async Task Prefix_RoutesAreMappedUnderPrefixOnly()
    {
        using var unprefixed = await new HttpClient().PostAsync(new Uri(_sim.BaseAddress, "/v1/chat/completions"), new StringContent("{}"));

        Assert.Equal(HttpStatusCode.NotFound, unprefixed.StatusCode);
        Assert.EndsWith("/sim/", _sim.BaseAddress.AbsoluteUri, StringComparison.Ordinal);
    }
}
