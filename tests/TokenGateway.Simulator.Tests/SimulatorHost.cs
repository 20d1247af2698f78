using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace TokenGateway.Simulator.Tests;

/// <summary>The simulator on real Kestrel at 127.0.0.1:0, plus an HttpClient aimed at it.</summary>
public sealed class SimulatorHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private SimulatorHost(WebApplication app, Uri baseAddress)
    {
        _app = app;
        BaseAddress = baseAddress;
        Client = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(30) };
    }

    public Uri BaseAddress { get; }

    public HttpClient Client { get; }

    public SimulatorRecorder Recorder => _app.Services.GetRequiredService<SimulatorRecorder>();

    public static async Task<SimulatorHost> StartAsync(Action<SimulatorOptions>? configure = null, string prefix = "", TimeProvider? time = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        if (time is not null)
        {
            builder.Services.AddSingleton(time);
        }

        builder.Services.AddLlmSimulator(configure);
        var app = builder.Build();
        app.MapLlmSimulator(prefix);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new SimulatorHost(app, new Uri(address + prefix.TrimEnd('/') + "/"));
    }

    public async Task<HttpResponseMessage> PostAsync(string path, object body, string? fault = null, Action<HttpRequestMessage>? configure = null,
        HttpCompletionOption completion = HttpCompletionOption.ResponseContentRead, CancellationToken cancellationToken = default)
    {
        var json = body is string s ? s : body is JsonNode node ? node.ToJsonString() : JsonSerializer.Serialize(body);
        var request = new HttpRequestMessage(HttpMethod.Post, path.TrimStart('/'))
        {
            Content = new StringContent(json, Encoding.UTF8, new MediaTypeHeaderValue("application/json")),
        };
        if (fault is not null)
        {
            request.Headers.Add("x-simulator-fault", fault);
        }

        configure?.Invoke(request);
        return await Client.SendAsync(request, completion, cancellationToken);
    }

    public async Task<JsonObject> PostJsonAsync(string path, object body, string? fault = null)
    {
        using var response = await PostAsync(path, body, fault);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {text}");
        return JsonNode.Parse(text)!.AsObject();
    }

    public async Task<List<SseEvent>> PostSseAsync(string path, object body, string? fault = null)
    {
        using var response = await PostAsync(path, body, fault, completion: HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var text = await response.Content.ReadAsStringAsync();
        return SseEvent.Parse(text);
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>One parsed server-sent event.</summary>
public sealed record SseEvent(string? Event, string Data)
{
    public JsonObject Json => JsonNode.Parse(Data)!.AsObject();

    public static List<SseEvent> Parse(string text)
    {
        var events = new List<SseEvent>();
        foreach (var block in text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            string? name = null;
            var data = new StringBuilder();
            foreach (var line in block.Split('\n'))
            {
                if (line.StartsWith("event: ", StringComparison.Ordinal))
                {
                    name = line[7..];
                }
                else if (line.StartsWith("data: ", StringComparison.Ordinal))
                {
                    data.Append(line[6..]);
                }
            }

            if (data.Length > 0)
            {
                events.Add(new SseEvent(name, data.ToString()));
            }
        }

        return events;
    }
}
