using System.Text.Encodings.Web;
using System.Text.Json;

namespace TokenGateway.Simulator;

/// <summary>Shared JSON settings: compact output without HTML escaping, as providers write it.</summary>
internal static class SimulatorJson
{
    public static readonly JsonSerializerOptions CompactOptions = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        WriteIndented = false,
    };

    public static readonly JsonWriterOptions WriterOptions = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Indented = false,
        SkipValidation = true,
    };
}
