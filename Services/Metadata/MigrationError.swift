/// Why the metadata schema could not be brought up to date.
enum MigrationError: Error, CustomStringConvertible {
    case databaseNewerThanCode(database: Int, code: Int)

    var description: String {
        switch self {
        case .databaseNewerThanCode(let database, let code):
            "the metadata database has schema version \(database) but this pierone knows only up to \(code); "
                + "run a newer pierone"
        }
    }
}
