using System.Net;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using TokenGateway.Core.Metering;

namespace TokenGateway.IntegrationTests.Infrastructure;

/// <summary>A small mix of real traffic through a gateway: every surface, a stream, an upstream error and a rejection.</summary>
public static class TrafficGenerator
{
    public static async Task<List<HttpResponseMessage>> SendMixAsync(GatewayServer server, string virtualKey)
    {
        using var http = server.CreateClient(virtualKey);
        var responses = new List<HttpResponseMessage>();
        async Task SendAsync(string path, string body, string? fault = null)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            if (fault is not null)
            {
                request.Headers.Add("x-simulator-fault", fault);
            }

            var response = await http.SendAsync(request);
            await response.Content.LoadIntoBufferAsync();
            responses.Add(response);
        }

        await SendAsync("/v1/chat/completions", "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Explain prompt caching in two sentences.\"}]}");
        await SendAsync("/v1/chat/completions", "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"Count to five.\"}]}");
        await SendAsync("/v1/responses", "{\"model\":\"gpt-4.1\",\"input\":\"Summarise the ledger design.\"}");
        await SendAsync("/v1/embeddings", "{\"model\":\"text-embedding-3-large\",\"input\":[\"alpha beta\",\"gamma delta\"]}");
        await SendAsync("/v1/messages", "{\"model\":\"claude-haiku-4-5\",\"max_tokens\":200,\"messages\":[{\"role\":\"user\",\"content\":\"Hello Claude\"}]}");
        await SendAsync("/v1/messages", "{\"model\":\"claude-sonnet-4-5\",\"stream\":true,\"max_tokens\":200,\"messages\":[{\"role\":\"user\",\"content\":\"Stream please\"}]}");
        await SendAsync("/v1/chat/completions", "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"fail upstream\"}]}", fault: "status=500");
        await SendAsync("/v1/chat/completions", "{\"model\":\"no-such-model\",\"messages\":[{\"role\":\"user\",\"content\":\"unknown model\"}]}");
        Assert.Contains(responses, r => r.StatusCode == HttpStatusCode.OK);

        // An event is recorded when the exchange completes, which may be just after the client has read the last byte:
        // wait until every request's event is in the ledger, so callers never race the completion step.
        foreach (var response in responses)
        {
            if (response.Headers.TryGetValues("x-tokengateway-request-id", out var ids))
            {
                await server.WaitForEventAsync(ids.First());
            }
        }

        await server.Services.GetRequiredService<IUsageLedger>().FlushAsync(CancellationToken.None);
        return responses;
    }
}
