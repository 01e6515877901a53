using System.Text;
using Azure;
using Azure.Data.Tables;
using TelemetryFunctions.Storage;

namespace TelemetryFunctions.Tests.Infrastructure;

/// <summary>Reads what a test's tables hold, straight from storage, to prove what was (and was not) written.</summary>
public sealed class StorageProbe(string connectionString, string prefix)
{
    private readonly TableServiceClient _service = new(connectionString);

    public TableClient Table(string name) => _service.GetTableClient(prefix + name);

    public async Task<List<TableEntity>> RowsAsync(string table)
    {
        var rows = new List<TableEntity>();
        try
        {
            await foreach (var row in Table(table).QueryAsync<TableEntity>())
            {
                rows.Add(row);
            }
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            // The table was never created: nothing was written to it.
        }

        return rows;
    }

    /// <summary>Every row of every table, keyed by table name.</summary>
    public async Task<Dictionary<string, List<TableEntity>>> AllRowsAsync()
    {
        var all = new Dictionary<string, List<TableEntity>>();
        foreach (var table in TableNames.All)
        {
            all[table] = await RowsAsync(table);
        }

        return all;
    }

    public async Task<int> TotalRowsAsync() => (await AllRowsAsync()).Values.Sum(r => r.Count);

    /// <summary>All stored text: keys, string values and binary payloads decoded as UTF-8.</summary>
    public static string Dump(IEnumerable<TableEntity> rows)
    {
        var text = new StringBuilder();
        foreach (var row in rows)
        {
            foreach (var (key, value) in row)
            {
                text.Append(key).Append('=');
                text.Append(value switch
                {
                    byte[] bytes => Encoding.UTF8.GetString(bytes),
                    BinaryData data => data.ToString(),
                    _ => value?.ToString(),
                });
                text.Append('\n');
            }
        }

        return text.ToString();
    }

    public async Task<string> DumpAllAsync(params string[] excludeTables) =>
        Dump((await AllRowsAsync()).Where(t => !excludeTables.Contains(t.Key)).SelectMany(t => t.Value));
}
