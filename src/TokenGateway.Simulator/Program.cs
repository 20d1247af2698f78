using Microsoft.Extensions.Configuration.Memory;

namespace TokenGateway.Simulator;

/// <summary>
/// Standalone simulator host: <c>dotnet run --project src/TokenGateway.Simulator --urls http://127.0.0.1:9000</c>.
/// <c>SIMULATOR_API_KEY</c> sets <see cref="SimulatorOptions.RequiredApiKey"/>; other options bind from the
/// <c>Simulator</c> section (e.g. <c>Simulator__DefaultOutputTokens=100</c>).
/// </summary>
/// <remarks>
/// The project ships no appsettings.json on purpose: it is referenced by the gateway host and tests, whose output folders
/// would otherwise receive (and fight over) its settings file. Defaults live here, below every other configuration source.
/// </remarks>
internal static class SimulatorProgram
{
    public static void Main(string[] args)
    {
        var builder = WebApplication.CreateSlimBuilder(args);
        builder.Configuration.Sources.Insert(0, new MemoryConfigurationSource
        {
            InitialData = new Dictionary<string, string?>
            {
                ["Logging:LogLevel:Default"] = "Warning",
                // Nobody can read the recorder of a standalone process: skip the per-request copy.
                [$"{SimulatorOptions.SectionName}:{nameof(SimulatorOptions.RecordLimit)}"] = "0",
            },
        });
        builder.Services.AddLlmSimulator(options =>
        {
            if (Environment.GetEnvironmentVariable("SIMULATOR_API_KEY") is { Length: > 0 } key)
            {
                options.RequiredApiKey = key;
            }
        });

        var app = builder.Build();
        app.MapGet("/healthz", () => "ok");
        app.MapLlmSimulator();
        app.Run();
    }
}
