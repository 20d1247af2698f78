using System.Net;
using System.Net.Http.Headers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using TokenGateway.Hosting;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests.Security;

/// <summary>
/// Issue #12 item 3: a generated admin key goes to an owner-only file in the data directory, once; the log (stdout)
/// names the file and never contains the key. Serial: it captures the process's console.
/// </summary>
[Collection(nameof(SerialCollection))]
public sealed class GeneratedAdminKeyTests
{
    [Fact]
    public async Task NoConfiguredKey_KeyWrittenOnceTo0600File_LogNamesThePathNotTheKey()
    {
        var data = Path.Combine(Path.GetTempPath(), "tg-it-" + Guid.NewGuid().ToString("N"));
        var keyFile = Path.Combine(data, "admin-key");
        var console = new StringWriter();
        var original = Console.Out;
        try
        {
            string key;
            Console.SetOut(console);
            await using (var first = await StartAsync(data))
            {
                key = (await File.ReadAllTextAsync(keyFile)).Trim();
                Assert.StartsWith("tga-", key, StringComparison.Ordinal);
                if (!OperatingSystem.IsWindows())
                {
                    Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyFile));
                }

                Assert.Equal(HttpStatusCode.OK, await StatusAsync(first, key));
            }

            var firstWrite = File.GetLastWriteTimeUtc(keyFile);
            await using (var second = await StartAsync(data)) // the stored digest is used; the file is not rewritten
            {
                Assert.Equal(HttpStatusCode.OK, await StatusAsync(second, key));
            }

            Console.SetOut(original);
            var output = console.ToString();
            Assert.Contains(keyFile, output, StringComparison.Ordinal);
            Assert.DoesNotContain(key, output, StringComparison.Ordinal);
            Assert.DoesNotContain(key[4..12], output, StringComparison.Ordinal);
            Assert.Equal(firstWrite, File.GetLastWriteTimeUtc(keyFile));
            Assert.Equal(key, (await File.ReadAllTextAsync(keyFile)).Trim());
        }
        finally
        {
            Console.SetOut(original);
            AdminKeyTests.TryDelete(data);
        }
    }

    private static async Task<WebApplication> StartAsync(string data)
    {
        var builder = GatewayApplication.CreateBuilder(["--urls", "http://127.0.0.1:0"]);
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["TOKENGATEWAY_ADMIN_KEY"] = null,
            ["Gateway:Simulator"] = "Always",
            ["Storage:DataDirectory"] = data,
        });
        var app = GatewayApplication.Build(builder);
        await app.StartAsync();
        return app;
    }

    private static async Task<HttpStatusCode> StatusAsync(WebApplication app, string key)
    {
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        using var http = new HttpClient { BaseAddress = new Uri(address) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        using var response = await http.GetAsync("/admin/teams");
        return response.StatusCode;
    }
}
