using System.Text.Json;

namespace TokenGateway.IntegrationTests.Infrastructure;

/// <summary>Reads the compact-JSON events a gateway's Serilog file sink has written so far.</summary>
internal static class CompactLogFile
{
    /// <summary>
    /// Polls <paramref name="logFile"/> every 100 ms (up to 15 s, since Serilog writes a request's completion event after
    /// the response has gone out) until <paramref name="done"/> holds for the events read, and returns the last read.
    /// </summary>
    public static async Task<List<JsonElement>> WaitForEventsAsync(string logFile, Func<List<JsonElement>, bool> done)
    {
        var events = new List<JsonElement>();
        for (var attempt = 0; attempt < 150 && !done(events); attempt++)
        {
            await Task.Delay(100);
            using var stream = new FileStream(logFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            var lines = (await reader.ReadToEndAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            events = lines.Where(line => line.EndsWith('}')).Select(line => JsonDocument.Parse(line).RootElement).ToList();
        }

        return events;
    }
}
