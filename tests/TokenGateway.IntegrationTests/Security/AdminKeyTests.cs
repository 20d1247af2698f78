using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using TokenGateway.Auth;
using TokenGateway.Hosting;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests.Security;

/// <summary>Issue #12 item 3: admin key strength at start, full-length comparison.</summary>
public sealed class AdminKeyTests
{
    [Theory]
    [InlineData("tga-short-key")]                               // about 72 bits
    [InlineData("0123456789012345678901234567")]                // digits only: 28 × log2(10) ≈ 93 bits
    [InlineData("tga-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")] // long, but 4 distinct characters
    public async Task WeakAdminKey_GatewayRefusesToStart_WithoutEchoingTheKey(string key)
    {
        var data = Path.Combine(Path.GetTempPath(), "tg-it-" + Guid.NewGuid().ToString("N"));
        var builder = GatewayApplication.CreateBuilder(["--urls", "http://127.0.0.1:0"]);
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["TOKENGATEWAY_ADMIN_KEY"] = key,
            ["Gateway:Simulator"] = "Always",
            ["Storage:DataDirectory"] = data,
            ["Serilog:MinimumLevel:Default"] = "Warning",
        });
        await using var app = GatewayApplication.Build(builder);
        try
        {
            var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => app.StartAsync());

            Assert.Contains("TOKENGATEWAY_ADMIN_KEY is too weak", ex.Message, StringComparison.Ordinal);
            Assert.DoesNotContain(key, ex.Message, StringComparison.Ordinal);
        }
        finally
        {
            TryDelete(data);
        }
    }

    [Theory]
    [InlineData(GatewayServer.AdminKey, true)]
    [InlineData("tga-bench-0123456789abcdef0123456789abcdef", true)] // the load harness's shape
    [InlineData("Xk9#mP2$vL7@qR4!", false)]                       // 16 chars, all classes: ≈ 105 bits
    public void Strength_Estimate(string key, bool accepted)
    {
        Assert.Equal(accepted, AdminKeyStrength.Weakness(key) is null);
        Assert.Equal(accepted, AdminKeyStrength.EstimateBits(key) >= AdminKeyStrength.MinimumBits);
    }

    [Fact]
    public void Strength_GeneratedKeysScoreWellAbove128Bits()
    {
        var base64 = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)); // openssl rand -base64 32
        var hex = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));    // openssl rand -hex 32

        Assert.Null(AdminKeyStrength.Weakness(base64));
        Assert.Null(AdminKeyStrength.Weakness(hex));
        Assert.True(AdminKeyStrength.EstimateBits(base64) > 250);
    }

    [Fact]
    public async Task AdminKeyLongerThan64Characters_IsComparedInFull()
    {
        var key = "tga-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(48)); // 100 characters
        await using var server = await StartWithAdminKeyAsync(key);
        using var full = Client(server, key);
        using var samePrefix = Client(server, key[..64] + new string('0', key.Length - 64));
        using var prefixOnly = Client(server, key[..64]);

        Assert.Equal(HttpStatusCode.OK, (await full.GetAsync("/admin/teams")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await samePrefix.GetAsync("/admin/teams")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await prefixOnly.GetAsync("/admin/teams")).StatusCode);
    }

    private static Task<GatewayServer> StartWithAdminKeyAsync(string key) =>
        GatewayServer.StartAsync(new Dictionary<string, string?> { ["TOKENGATEWAY_ADMIN_KEY"] = key }, adminKey: key);

    private static HttpClient Client(GatewayServer server, string key)
    {
        var client = new HttpClient { BaseAddress = new Uri(server.Address) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }

    internal static void TryDelete(string directory)
    {
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
