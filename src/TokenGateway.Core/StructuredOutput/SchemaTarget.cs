using System.Text.Json.Nodes;

namespace TokenGateway.Core.StructuredOutput;

/// <summary>Where the structured answer travels in the request and the response.</summary>
public enum SchemaCarrier
{
    /// <summary>The answer is the message text (chat <c>response_format</c>, Responses <c>text.format</c>, Anthropic <c>output_format</c>).</summary>
    ResponseFormat,
    /// <summary>The answer is the arguments (OpenAI) or input (Anthropic) of one forced tool call.</summary>
    Tool,
}

/// <summary>Where the schema that governs a request came from.</summary>
public enum SchemaSource
{
    /// <summary>The request body itself.</summary>
    Request,
    /// <summary>A registered schema named by the <c>x-tokengateway-schema</c> header.</summary>
    Header,
    /// <summary>A registered schema named by the caller's policy.</summary>
    Policy,
}

/// <summary>The schema a request's answer must satisfy, and how it is carried.</summary>
/// <param name="Name">The schema name (the <c>json_schema.name</c>, tool name or registry name).</param>
/// <param name="Schema">The JSON Schema as the client or the registry gave it.</param>
/// <param name="Carrier">Message text or a forced tool call.</param>
/// <param name="Strict">True when the client asked for provider-enforced strict mode.</param>
/// <param name="Source">Where it came from.</param>
public sealed record SchemaTarget(string Name, JsonObject Schema, SchemaCarrier Carrier, bool Strict, SchemaSource Source)
{
    /// <summary>The registry version when <see cref="Source"/> is not <see cref="SchemaSource.Request"/>.</summary>
    public int? Version { get; init; }
}
